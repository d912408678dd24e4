"""The one-line service status (systemd's STATUS=, shown by `systemctl status`) from the children's reports.

The most pressing fact wins: a child waiting to be restarted, a child that went silent, a failed or
starting worker, the API draining, the NPU held by another process, a model loading, the API not yet
listening; otherwise "ready, N in flight, M queued; NPU: <owner> (<why>)". In-flight and queued
counts are the larger of the two children's reports (whichever of them holds the queue knows it best).
"""

from __future__ import annotations

from npu_worker.states import ApiState, Role, Rung, WorkerState
from supervisor.children import Child, describe_exit


def status_line(api: Child, worker: Child, now: float, heartbeat_timeout_s: float) -> str:
    children = (worker, api)
    for child in children:
        if child.restart_at is not None:
            return f"{child.role} restarting ({describe_exit(child.last_exit)})"
    for child in children:
        if child.status is not None and not child.heard_within(now, heartbeat_timeout_s):
            return f"{child.role} not responding"
    report = worker.status
    detail = report.detail if report is not None else ""
    model = (report.model if report is not None else "") or "model"
    if worker.state == WorkerState.FAILED:
        return f"{Role.WORKER} failed: {detail or 'see the log'}"
    if worker.state == WorkerState.STARTING:
        return f"starting {model}"
    if api.state == ApiState.DRAINING:
        return f"{Role.API} draining"
    if worker.state == WorkerState.NPU_BUSY:
        return f"NPU busy: {detail or 'held by another process'}"
    if worker.state == WorkerState.LOADING:
        return f"loading {model}"
    view = api.status
    if api.healthy and view is not None and view.worker_ready:
        reports = [c.status for c in children if c.status is not None]
        in_flight = max(r.in_flight for r in reports)
        queued = max(r.queued for r in reports)
        npu = f"; NPU: {view.npu_owner} ({view.npu_reason})" if view.npu_reason else ""
        rung = f"; {view.rung}: {view.rung_reason}" if view.rung != Rung.NORMAL else ""
        state = "degraded" if view.rung.degraded else "ready"
        return f"{state}, {in_flight} in flight, {queued} queued{npu}{rung}"
    if worker.healthy:
        return f"starting {Role.API}"
    return "starting"
