"""How fast the queue drains, measured, so that Retry-After tells a client when there will be room."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

MIN_RETRY_S = 1
MAX_RETRY_S = 600


class DrainRate:
    """Requests finished per second over the last `window_s`; Retry-After from it."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._finished: collections.deque[float] = collections.deque()

    def finished(self) -> None:
        now = self.clock()
        self._finished.append(now)
        self._forget_before(now)  # here too: the rate may go unread for months

    def _forget_before(self, now: float) -> None:
        while self._finished and now - self._finished[0] > self.window_s:
            self._finished.popleft()

    def per_second(self) -> float | None:
        """The measured rate, or None with fewer than two completions in the window."""
        now = self.clock()
        self._forget_before(now)
        if len(self._finished) < 2:
            return None
        span = max(now - self._finished[0], 1e-3)
        return (len(self._finished) - 1) / span

    def retry_after_s(self, ahead: int, fallback_s: float) -> int:
        """Whole seconds until `ahead` more requests will have finished; `fallback_s` per request
        while nothing has been measured."""
        rate = self.per_second()
        wait = ahead / rate if rate else ahead * fallback_s
        return int(min(MAX_RETRY_S, max(MIN_RETRY_S, math.ceil(wait))))
