"""Restart policy and its effect on real child processes: growing backoff, reset, flapping."""

from __future__ import annotations

import signal
from pathlib import Path

from supervisor_testkit import NotifyListener, RunningSupervisor

from supervisor.restarts import RestartPolicy, RestartTracker


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_s=30, flap_deaths=100, flap_window_s=60))
    delays = [tracker.record_death(now=float(i), uptime_s=0.5) for i in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_backoff_starts_again_after_a_child_stayed_up_twice_the_cap() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_s=30, flap_deaths=100, flap_window_s=60))
    assert [tracker.record_death(float(i), uptime_s=1) for i in range(3)] == [1, 2, 4]
    assert tracker.record_death(100.0, uptime_s=60) == 1
    assert tracker.record_death(101.0, uptime_s=59) == 2


def test_deaths_within_the_window_are_flapping_and_old_deaths_are_forgotten() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_s=30, flap_deaths=3, flap_window_s=10))
    assert tracker.record_death(0.0, uptime_s=0) is not None
    assert tracker.record_death(5.0, uptime_s=0) is not None
    assert tracker.record_death(11.0, uptime_s=0) is not None  # the death at 0 s left the window
    assert tracker.record_death(12.0, uptime_s=0) is None
    assert tracker.deaths_in_window == 3


def test_a_dying_worker_is_restarted_alone_with_growing_delays(tmp_path: Path) -> None:
    with (
        NotifyListener(tmp_path / "notify.sock") as notify,
        RunningSupervisor(tmp_path, worker="--die-after 0", NOTIFY_SOCKET=str(notify.path)) as supervisor,
    ):
        supervisor.wait_until(lambda: len(supervisor.logs("restart_scheduled", role="worker")) >= 4)
        delays = [line["delay_s"] for line in supervisor.logs("restart_scheduled", role="worker")][:4]
        assert delays == [0.1, 0.2, 0.4, 0.8]
        # Each restart really waited (at least) its delay after the previous process had exited.
        exits, starts = supervisor.events("worker", "exit"), supervisor.events("worker", "start")
        for delay, exited, restarted in zip(delays, exits, starts[1:], strict=False):
            assert restarted.at - exited.at >= delay
        assert all(line["code"] == 3 for line in supervisor.logs("child_exited", role="worker"))
        assert "STATUS=worker restarting (exit 3)" in notify.lines("STATUS=")
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait() == 0
        assert len(supervisor.events("api", "start")) == 1  # the API was left alone
        assert supervisor.logs("ready") == []


def test_a_flapping_child_stops_everything_and_the_supervisor_exits_non_zero(tmp_path: Path) -> None:
    with RunningSupervisor(
        tmp_path,
        worker="--die-after 0",
        HAILO_VISION_SUPERVISOR_FLAP_DEATHS="3",
        HAILO_VISION_SUPERVISOR_FLAP_WINDOW_S="30",
    ) as supervisor:
        assert supervisor.wait() == 1
        assert len(supervisor.events("worker", "start")) == 3
        (flapping,) = supervisor.logs("flapping")
        assert (flapping["role"], flapping["deaths"]) == ("worker", 3)
        # The stop is the ordinary ordered one: the API is asked to drain (SIGTERM) and has exited.
        assert supervisor.logs("child_stopping", role="api")
        assert len(supervisor.logs("child_exited", role="api")) == 1
        runtime_dir = Path(supervisor.logs("supervisor_started")[0]["runtime_dir"])
        assert not runtime_dir.exists()
