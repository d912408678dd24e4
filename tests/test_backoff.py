"""Backoff: doubling delays up to a cap, a bounded number of them, and a reset."""

from __future__ import annotations

from npu_worker.backoff import Backoff


def test_delays_double_up_to_the_cap_then_run_out() -> None:
    backoff = Backoff(first_s=5.0, cap_s=60.0, attempts=7)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, None]
    assert backoff.next_delay() is None  # stays exhausted


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(first_s=1.0, cap_s=8.0, attempts=2)
    assert (backoff.next_delay(), backoff.next_delay(), backoff.next_delay()) == (1.0, 2.0, None)
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_no_attempts_means_no_retry() -> None:
    assert Backoff(first_s=1.0, cap_s=1.0, attempts=0).next_delay() is None
