"""The last minute of requests and the last errors, for `hailo-visionctl status` ("why is it slow?").

Prometheus histograms answer over the service's life; a person at the Pi wants now: how many
requests in the last minute, how they ended, p50/p95 latency, tokens per second, and what failed.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WINDOW_S = 60.0
ERRORS_KEPT = 10


@dataclass(frozen=True)
class _Request:
    at: float
    status: int
    seconds: float


@dataclass(frozen=True)
class ErrorSeen:
    at: str  # ISO 8601, UTC
    code: str
    message: str


def _percentile(sorted_values: list[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


class RecentRequests:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._requests: collections.deque[_Request] = collections.deque()
        self._tokens: collections.deque[tuple[float, int]] = collections.deque()
        self.errors: collections.deque[ErrorSeen] = collections.deque(maxlen=ERRORS_KEPT)

    def finished(self, status: int, seconds: float) -> None:
        now = self.clock()
        self._requests.append(_Request(now, status, seconds))
        self._forget_before(now)  # here, not only when read: nobody may ask for months

    def generated(self, tokens: int) -> None:
        now = self.clock()
        self._tokens.append((now, tokens))
        self._forget_before(now)

    def _forget_before(self, now: float) -> None:
        """Drop what left the window: the memory held is one minute of requests, whatever the uptime."""
        while self._requests and now - self._requests[0].at > WINDOW_S:
            self._requests.popleft()
        while self._tokens and now - self._tokens[0][0] > WINDOW_S:
            self._tokens.popleft()

    def failed(self, code: str, message: str) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self.errors.append(ErrorSeen(at, code, message))

    def summary(self) -> dict[str, Any]:
        self._forget_before(self.clock())
        by_status = collections.Counter(str(r.status) for r in self._requests)
        served = sorted(r.seconds for r in self._requests if r.status < 400)
        tokens = sum(n for _, n in self._tokens)
        return {
            "window_s": WINDOW_S,
            "count": len(self._requests),
            "by_status": dict(sorted(by_status.items())),
            "p50_ms": round(_percentile(served, 0.5) * 1000, 1) if served else None,
            "p95_ms": round(_percentile(served, 0.95) * 1000, 1) if served else None,
            "tokens_per_s": round(tokens / WINDOW_S, 2) if tokens else None,
        }
