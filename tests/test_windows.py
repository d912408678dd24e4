"""The one-minute windows (the recent requests of /admin/status, the drain rate behind Retry-After)
hold one minute whatever the uptime, read or not: the soak found them growing with every request."""

from __future__ import annotations

import tracemalloc

from engine_testkit import Clock

from api.recent import RecentRequests
from scheduler.drain import DrainRate


def _held_after(minutes: int) -> int:
    """Bytes the windows hold after `minutes` of ten requests a second that nobody reads."""
    clock = Clock()
    recent, drain = RecentRequests(clock), DrainRate(window_s=60, clock=clock)
    tracemalloc.start()
    try:
        for _ in range(minutes * 600):
            clock.advance(0.1)
            recent.finished(200, 0.01)
            recent.generated(8)
            drain.finished()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_unread_windows_hold_one_minute_whatever_the_uptime() -> None:
    two, twenty = _held_after(2), _held_after(20)
    assert twenty < two * 1.2  # without forgetting, twenty minutes held ten times as much
