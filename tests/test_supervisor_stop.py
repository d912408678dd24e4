"""Stopping: the API drains first, the worker stops after it, stubborn children are killed in order."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from supervisor_testkit import RunningSupervisor


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_stop_drains_the_api_before_the_worker_is_stopped(tmp_path: Path, how: str) -> None:
    with RunningSupervisor(tmp_path, api="--term-delay 0.5", worker="--term-delay 0.2") as supervisor:
        supervisor.wait_until(lambda: supervisor.logs("ready"))
        runtime_dir = Path(supervisor.logs("supervisor_started")[0]["runtime_dir"])
        assert (runtime_dir / "config.json").is_file()
        if how == "sigterm":
            supervisor.signal(signal.SIGTERM)
        else:
            supervisor.ctrl_c()
        assert supervisor.wait() == 0
        order = [(e.role, e.what) for e in supervisor.events() if e.what in ("term", "sigint", "exit")]
        assert order == [("api", "term"), ("api", "exit"), ("worker", "term"), ("worker", "exit")]
        assert [line["role"] for line in supervisor.logs("child_exited")] == ["api", "worker"]
        assert not runtime_dir.exists()


def test_children_ignoring_sigterm_are_killed_one_after_the_other(tmp_path: Path) -> None:
    with RunningSupervisor(
        tmp_path,
        api="--ignore-term",
        worker="--ignore-term",
        grace_s=0.3,
        HAILO_VISION_API_DRAIN_TIMEOUT_S="0.3",
    ) as supervisor:
        supervisor.wait_until(lambda: supervisor.logs("ready"))
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait() == 0
        exits = supervisor.logs("child_exited")
        assert [(line["role"], line.get("signal")) for line in exits] == [
            ("api", "SIGKILL"),
            ("worker", "SIGKILL"),
        ]
        (worker_term,) = supervisor.events("worker", "term")
        (api_term,) = supervisor.events("api", "term")
        assert api_term.at < worker_term.at
        # The worker was asked to stop only after the API was gone.
        lines = [(line["event"], line.get("role")) for line in supervisor.logs()]
        assert lines.index(("child_exited", "api")) < lines.index(("child_stopping", "worker"))


def test_a_second_signal_cuts_a_long_drain_short(tmp_path: Path) -> None:
    with RunningSupervisor(
        tmp_path, api="--ignore-term", HAILO_VISION_API_DRAIN_TIMEOUT_S="600"
    ) as supervisor:
        supervisor.wait_until(lambda: supervisor.logs("ready"))
        supervisor.signal(signal.SIGTERM)
        supervisor.wait_until(lambda: supervisor.events("api", "term"))
        supervisor.signal(signal.SIGTERM)
        assert supervisor.wait() == 0  # long before the 600 s drain would have ended
        (hurried,) = supervisor.logs("stop_hurried")
        assert hurried["waiting_for"] == "api"
        exits = supervisor.logs("child_exited")
        assert [(line["role"], line.get("signal"), line.get("code")) for line in exits] == [
            ("api", "SIGKILL", None),
            ("worker", None, 0),
        ]
