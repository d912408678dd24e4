"""Every rung of the ladder is visible in each channel that shows it: the status line systemd gets
(STATUS=), /metrics, and the scheduler section of /health and /admin/status - rendered in-process.

The running-service tests (test_degradation.py) reach the rungs for real; this one walks all of them
through the renderers, so a rung added to the enum without being shown anywhere fails here.
"""

from __future__ import annotations

import pytest

from api.metrics import Metrics
from npu_worker.protocol import Status
from npu_worker.states import ApiState, NpuOwner, Role, Rung, WorkerState
from scheduler.ladder import Allowance, Ladder
from scheduler.snapshot import Snapshot
from scheduler.turn_types import Figures, Phase, Policy
from supervisor.children import Child
from supervisor.restarts import RestartPolicy, RestartTracker
from supervisor.status import status_line


def snapshot(rung: Rung) -> Snapshot:
    return Snapshot(
        policy=Policy.SHARE,
        phase=Phase.HOLDING,
        reason="vision work waiting",
        owner=NpuOwner.HAILO_VISION,
        owner_since_s=12.0,
        owner_reason="vision work waiting",
        waiting=0,
        in_flight=0,
        door_waiting=0,
        door_in_flight=0,
        figures=Figures(),
        release_in_s=None,
        ollama_url="",
        ollama=None,
        ladder=Ladder(rung, (f"because of {rung}",), Allowance()),
        seen=None,
    )


def child(role: Role, status: Status) -> Child:
    tracker = RestartTracker(RestartPolicy(1.0, 30.0, 5, 60.0))
    made = Child(role, ["true"], tracker)
    made.process = object()  # type: ignore[assignment]  # "running", as far as the status line cares
    made.status = status
    made.last_heard = made.started_at = 0.0
    return made


@pytest.mark.parametrize("rung", list(Rung))
def test_each_rung_is_shown_on_every_channel(rung: Rung) -> None:
    metrics = Metrics()
    metrics.observe_scheduler(snapshot(rung))
    text = metrics.render(True, 0, None).decode()
    assert f'hailo_vision_degradation_rung{{rung="{rung}"}} 1.0' in text

    api = Status(
        Role.API,
        1,
        ApiState.LISTENING,
        "",
        0,
        0,
        "vlm",
        True,
        NpuOwner.HAILO_VISION,
        "w",
        rung,
        f"because of {rung}",
    )
    worker = Status(Role.WORKER, 2, WorkerState.READY, "ready", 0, 0, "vlm")
    line = status_line(child(Role.API, api), child(Role.WORKER, worker), now=0.0, heartbeat_timeout_s=3.0)
    if rung == Rung.NORMAL:
        assert line.startswith("ready,") and "because" not in line
    else:
        assert f"{rung}: because of {rung}" in line
        assert line.startswith("degraded," if rung.degraded else "ready,")
