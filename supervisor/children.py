"""One supervised child process: its command, its process, and what it last said about itself.

Children run in their own process group (process_group=0, still in the supervisor's session): a
Ctrl-C in a terminal reaches only the supervisor, which then stops the children in order
(API first, worker after) instead of all of them at once. Their stdin is /dev/null and their
stdout/stderr are the supervisor's (journald under systemd).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from npu_worker.protocol import Status
from npu_worker.states import ApiState, Role, WorkerState
from supervisor.restarts import RestartTracker

# The states in which each role is up: the API listens; the worker's models are on the device, or
# prepared and given back (loaded on demand, or left to hailo-ollama: the API's scheduler knows).
HEALTHY_STATES: dict[Role, tuple[ApiState | WorkerState, ...]] = {
    Role.API: (ApiState.LISTENING,),
    Role.WORKER: (WorkerState.READY, WorkerState.RELEASED),
}
# systemd's notify variables are the supervisor's alone.
_PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def describe_exit(returncode: int | None) -> str:
    """'exit 3' or 'signal SIGKILL', as people read it in STATUS= and logs."""
    if returncode is None:
        return "not started"
    if returncode >= 0:
        return f"exit {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def exit_fields(returncode: int) -> dict[str, Any]:
    """Log fields for an exit: code=N or signal=NAME."""
    if returncode >= 0:
        return {"code": returncode}
    return {"signal": describe_exit(returncode).removeprefix("signal ")}


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in _PRIVATE_ENV}


class Child:
    """A child role (api or worker): starts, reports STATUS, dies, is restarted."""

    def __init__(self, role: Role, argv: Sequence[str], restarts: RestartTracker) -> None:
        self.role = role
        self.argv = list(argv)
        self.restarts = restarts
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.last_heard = 0.0
        self.status: Status | None = None
        self.last_exit: int | None = None
        self.restart_at: float | None = None
        self.kill_sent = False
        self.stop_reason = ""  # why the supervisor stopped this process, for the logs

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def state(self) -> ApiState | WorkerState | None:
        """The last reported state of the running process (None before its first Status)."""
        return self.status.state if self.running and self.status is not None else None

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY_STATES[self.role]

    def start(self, now: float, env: Mapping[str, str]) -> int:
        self.process = subprocess.Popen(  # noqa: S603 - our own children, argv fixed by the supervisor
            self.argv, stdin=subprocess.DEVNULL, env=child_environment(env), process_group=0
        )
        self.started_at = now
        self.status = None
        self.restart_at = None
        self.kill_sent = False
        self.stop_reason = ""
        return self.process.pid

    def record_status(self, status: Status, now: float) -> bool:
        """Take a Status report; True when its state or detail changed."""
        previous = self.status
        changed = previous is None or (status.state, status.detail) != (previous.state, previous.detail)
        self.status = status
        self.last_heard = now
        return changed

    def heard_within(self, now: float, timeout_s: float) -> bool:
        """Running and heard from recently; a new process has timeout_s from its start for its first word."""
        return self.running and now - max(self.last_heard, self.started_at) <= timeout_s

    def reap(self) -> int | None:
        """The exit status if the process has ended since the last call (it is then forgotten)."""
        if self.process is None:
            return None
        returncode = self.process.poll()
        if returncode is None:
            return None
        self.process = None
        self.last_exit = returncode
        return returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self.kill_sent = True
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            self.process.send_signal(signum)  # a no-op for a process that has already ended
