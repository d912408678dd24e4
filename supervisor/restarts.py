"""When a dead child is restarted, and when its deaths count as flapping.

Backoff: the n-th consecutive death waits restart_initial_s * 2**(n-1), capped at restart_max_s.
A child that stayed up for at least 2 x restart_max_s before dying counts as having recovered: its
consecutive-death count starts again, so it is restarted after restart_initial_s. (Uptime, not the
ready state, is the rule: a worker still loading a large model or waiting for a busy NPU is not
crash-looping, and a child that crashes right after reaching ready still backs off.)

Flapping: flap_deaths deaths of the same child within flap_window_s. The supervisor then stops
everything and exits non-zero, so that systemd sees the failure instead of an endless restart loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from npu_worker.config import SupervisorConfig

_MAX_DOUBLINGS = 30  # keeps 2**n finite; the cap applies long before


@dataclass(frozen=True)
class RestartPolicy:
    initial_s: float
    max_s: float
    flap_deaths: int
    flap_window_s: float

    @classmethod
    def from_config(cls, config: SupervisorConfig) -> RestartPolicy:
        return cls(config.restart_initial_s, config.restart_max_s, config.flap_deaths, config.flap_window_s)

    @property
    def recovered_after_s(self) -> float:
        """Uptime after which a death no longer counts as consecutive."""
        return 2 * self.max_s


class RestartTracker:
    """One child's death history: the next restart delay, or the verdict that it is flapping."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.consecutive_deaths = 0
        self._deaths: deque[float] = deque()

    def record_death(self, now: float, uptime_s: float) -> float | None:
        """The delay before restarting the child that just died, or None when it is flapping."""
        self._deaths.append(now)
        while self._deaths and self._deaths[0] < now - self.policy.flap_window_s:
            self._deaths.popleft()
        if uptime_s >= self.policy.recovered_after_s:
            self.consecutive_deaths = 0
        self.consecutive_deaths += 1
        if len(self._deaths) >= self.policy.flap_deaths:
            return None
        doublings = min(self.consecutive_deaths - 1, _MAX_DOUBLINGS)
        return min(self.policy.initial_s * 2**doublings, self.policy.max_s)

    @property
    def deaths_in_window(self) -> int:
        return len(self._deaths)
