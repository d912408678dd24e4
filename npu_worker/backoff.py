"""Delays for retrying something whose failure may or may not pass: doubling, capped, and bounded.

A retry that could be hiding a permanent fault (a configuration error read as "busy") must not go on
forever: after `attempts` delays, `next_delay()` answers None and the caller treats the failure as
permanent. Pure and clock-free: the caller waits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    first_s: float  # the first delay
    cap_s: float  # no delay is longer
    attempts: int  # how many delays are handed out before giving up
    used: int = 0  # delays handed out since the last reset

    def next_delay(self) -> float | None:
        """The delay before the next try (counting it), or None once `attempts` were handed out."""
        if self.used >= self.attempts:
            return None
        delay = min(self.cap_s, self.first_s * 2**self.used)
        self.used += 1
        return delay

    def reset(self) -> None:
        """Start again from `first_s` (the cause went away, or was told apart)."""
        self.used = 0
