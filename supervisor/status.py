"""The one-line service status (systemd's STATUS=, shown by `systemctl status`) from the children's reports.

The most pressing fact wins: a child waiting to be restarted, a child that went silent, the NPU
being held by another process, a failed or loading model, the API not yet listening; otherwise
"ready, N in flight, M queued". In-flight and queued counts are the larger of the two children's
reports (whichever of them holds the queue knows it best).
"""

from __future__ import annotations

from supervisor.children import API, WORKER, Child, describe_exit


def status_line(api: Child, worker: Child, now: float, heartbeat_timeout_s: float) -> str:
    children = (worker, api)
    for child in children:
        if child.restart_at is not None:
            return f"{child.role} restarting ({describe_exit(child.last_exit)})"
    for child in children:
        if child.status and not child.heard_within(now, heartbeat_timeout_s):
            return f"{child.role} not responding"
    detail = str(worker.status.get("detail", ""))
    model = str(worker.status.get("model", "")) or "model"
    match worker.state:
        case "npu_busy":
            return f"NPU busy: {detail or 'held by another process'}"
        case "failed":
            return f"{WORKER} failed: {detail or 'see the log'}"
        case "loading":
            return f"loading {model}"
    if api.state == "draining":
        return f"{API} draining"
    if api.healthy and worker.healthy:
        in_flight = max(_count(api, "in_flight"), _count(worker, "in_flight"))
        queued = max(_count(api, "queued"), _count(worker, "queued"))
        return f"ready, {in_flight} in flight, {queued} queued"
    if worker.healthy:
        return f"starting {API}"
    return "starting"


def _count(child: Child, key: str) -> int:
    value = child.status.get(key, 0)
    return value if isinstance(value, int) else 0
