"""The supervisor's event loop: start the API and the NPU worker, restart them, stop them in order.

One thread. Each turn it waits (zmq poll, at most a quarter second) on the control socket, where the
children send STATUS fire-and-forget (the supervisor never replies), and on a self-pipe that
signal.set_wakeup_fd writes to, so SIGTERM/SIGINT/SIGHUP and SIGCHLD wake it at once. Then it reaps
dead children (Popen.poll), starts restarts that are due, advances a stop in progress and tells
systemd what it sees (supervisor/notify.py). Signal handlers only record the signal.

Stop (first SIGTERM, SIGINT or SIGHUP, or a flapping child): SIGTERM to the API, which stops
accepting and finishes in-flight requests for up to api.drain_timeout_s; wait for it to exit (SIGKILL
after drain_timeout_s + api_grace_s); then SIGTERM to the worker (SIGKILL after worker_grace_s);
then exit 0 (1 after flapping). Each further stop signal cuts the current wait short: the child
being waited for gets SIGKILL at once. The systemd watchdog is pinged throughout a stop, which its
own deadlines bound; before that, only while both children keep reporting (or wait for a restart).

Ctrl-C: children run in their own process group (supervisor/children.py), so a terminal's SIGINT
reaches only the supervisor, and the drain order holds. Children that get SIGINT anyway (someone
signalling them directly) treat it like SIGTERM.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from types import FrameType
from typing import Any

import zmq

from npu_worker import codec, protocol
from npu_worker.config import Config
from npu_worker.logs import log_event
from npu_worker.protocol import Status
from npu_worker.states import Role, WorkerState
from supervisor.children import Child, describe_exit, exit_fields
from supervisor.memory_watch import MemoryWatch, hard_limit_mb
from supervisor.notify import Notifier
from supervisor.restarts import RestartPolicy, RestartTracker
from supervisor.runtime import RuntimeDir
from supervisor.status import status_line

log = logging.getLogger("supervisor")

API_KILL_GRACE_S = 5.0  # beyond api.drain_timeout_s, before the API gets SIGKILL
WORKER_STOP_GRACE_S = 10.0  # after SIGTERM, before the worker gets SIGKILL
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_MAX_WAIT_S = 0.25
# The states a worker is in while systemd's start timeout should be extended.
_LOADING_STATES = (WorkerState.STARTING, WorkerState.LOADING, WorkerState.NPU_BUSY)


class StopPhase(Enum):
    RUNNING = "running"
    API = "api"  # waiting for the API to drain and exit
    WORKER = "worker"  # then for the worker
    DONE = "done"


_ROLE_OF_PHASE = {StopPhase.API: Role.API, StopPhase.WORKER: Role.WORKER}


def default_commands() -> dict[Role, list[str]]:
    """The real children; the supervisor appends --config-json FILE --runtime-dir DIR."""
    return {
        Role.API: [sys.executable, "-m", "api.main"],
        Role.WORKER: [sys.executable, "-m", "npu_worker.main"],
    }


class Supervisor:
    def __init__(
        self,
        config: Config,
        commands: Mapping[Role, Sequence[str]] | None = None,
        api_grace_s: float = API_KILL_GRACE_S,
        worker_grace_s: float = WORKER_STOP_GRACE_S,
    ) -> None:
        self.config = config
        self.commands = dict(commands or default_commands())
        self.api_grace_s = api_grace_s
        self.worker_grace_s = worker_grace_s
        self.notifier = Notifier()
        self.children: dict[Role, Child] = {}
        self.exit_code = 0
        self.stop_phase = StopPhase.RUNNING
        self.stop_reason = ""
        self.stop_deadline = 0.0
        self.started_at = 0.0
        self._signals: list[int] = []
        self.memory = MemoryWatch(hard_limit_mb(config.resources))

    # --- the loop -----------------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until stopped; the process exit code (0 after a requested stop, 1 after flapping)."""
        self.started_at = time.monotonic()
        with RuntimeDir(self.config) as runtime, zmq.Context() as context:
            control = context.socket(zmq.ROUTER)
            control.setsockopt(zmq.LINGER, 0)
            control.bind(protocol.control_endpoint(runtime.path))
            wake_read, restore_signals = self._install_signal_handlers()
            try:
                self._start_all(runtime)
                poller = zmq.Poller()
                poller.register(control, zmq.POLLIN)
                poller.register(wake_read, zmq.POLLIN)
                while self.stop_phase != StopPhase.DONE:
                    self._turn(control, poller, wake_read)
            except Exception:
                log.exception("supervisor_failed")
                self.exit_code = 1
            finally:
                self._kill_remaining()
                restore_signals()
                control.close()
        log_event(log, "supervisor_exit", exit_code=self.exit_code)
        return self.exit_code

    def _turn(self, control: zmq.Socket[bytes], poller: zmq.Poller, wake: int) -> None:
        events = dict(poller.poll(math.ceil(self._wait_s(time.monotonic()) * 1000)))
        if wake in events:
            _drain_pipe(wake)
        now = time.monotonic()
        self._handle_signals(now)
        if control in events:
            self._receive(control, now)
        self._check_memory(now)
        self._check_silence(now)
        self._reap(now)
        self._restart_due(now)
        self._advance_stop(now)
        self._notify(now)

    def _wait_s(self, now: float) -> float:
        deadlines = [c.restart_at for c in self.children.values() if c.restart_at is not None]
        if self.stop_phase != StopPhase.RUNNING:
            deadlines.append(self.stop_deadline)
        watchdog = self.notifier.next_due()
        if watchdog is not None:
            deadlines.append(watchdog)
        return max(0.0, min([now + _MAX_WAIT_S, *deadlines]) - now)

    # --- children -----------------------------------------------------------------------------------

    def _start_all(self, runtime: RuntimeDir) -> None:
        policy = RestartPolicy.from_config(self.config.supervisor)
        log_event(log, "supervisor_started", runtime_dir=str(runtime.path), config=self.config.source)
        self.notifier.status("starting")
        # The worker first: its model load is the long pole.
        for role in (Role.WORKER, Role.API):
            argv = [*self.commands[role], "--config-json", str(runtime.config_file)]
            argv += ["--runtime-dir", str(runtime.path)]
            self.children[role] = Child(role, argv, RestartTracker(policy))
            self._start(self.children[role], time.monotonic())

    def _start(self, child: Child, now: float) -> None:
        pid = child.start(now, os.environ)
        log_event(log, "child_started", role=child.role, pid=pid)

    def _receive(self, control: zmq.Socket[bytes], now: float) -> None:
        while True:
            try:
                frames = control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = codec.decode(frames[1:]).message
            except protocol.ProtocolError as exc:
                log_event(log, "control_message_dropped", logging.WARNING, reason=str(exc))
                continue
            if isinstance(message, Status):
                self._take_status(message, now)

    def _take_status(self, status: Status, now: float) -> None:
        child = self.children.get(status.role)
        # A report from an earlier process of this role (still queued when it died) is stale.
        if child is None or child.pid is None or status.pid != child.pid:
            return
        if child.record_status(status, now):
            log_event(
                log, "child_state", role=child.role, pid=child.pid, state=status.state, detail=status.detail
            )

    def _check_memory(self, now: float) -> None:
        worker = self.children[Role.WORKER]
        if self.stop_phase != StopPhase.RUNNING or not worker.running or worker.stop_reason:
            return
        rss_mb = self.memory.check(now, worker.pid)
        if rss_mb is not None:
            reason = (
                f"memory: {rss_mb:.0f} MiB resident, over the hard limit of {self.memory.limit_mb:.0f} MiB"
            )
            log_event(
                log, "memory_limit_exceeded", logging.ERROR, role=worker.role, pid=worker.pid, reason=reason
            )
            worker.stop_reason = reason
            worker.terminate()

    def _check_silence(self, now: float) -> None:
        """A child that stopped reporting (stopped, or its loop blocked) is killed and so restarted:
        silent past worker.heartbeat_timeout_s, or without a first word within worker.start_timeout_s."""
        if self.stop_phase != StopPhase.RUNNING:
            return
        worker = self.config.worker
        for child in self.children.values():
            if not child.running or child.kill_sent or child.stop_reason:
                continue
            bound = worker.heartbeat_timeout_s if child.status is not None else worker.start_timeout_s
            if child.heard_within(now, bound):
                continue
            reason = f"silent for more than {bound:g} s"
            log_event(log, "child_silent", logging.ERROR, role=child.role, pid=child.pid, reason=reason)
            child.stop_reason = reason
            child.kill()

    def _reap(self, now: float) -> None:
        for child in self.children.values():
            pid, uptime = child.pid, now - child.started_at
            returncode = child.reap()
            if returncode is None:
                continue
            fields = exit_fields(returncode)
            if child.stop_reason:
                fields["reason"] = child.stop_reason
            log_event(log, "child_exited", role=child.role, pid=pid, uptime_s=round(uptime, 3), **fields)
            if self.stop_phase == StopPhase.RUNNING:
                self._schedule_restart(child, now, uptime)

    def _schedule_restart(self, child: Child, now: float, uptime: float) -> None:
        delay = child.restarts.record_death(now, uptime)
        if delay is None:
            policy = child.restarts.policy
            log_event(
                log,
                "flapping",
                logging.ERROR,
                role=child.role,
                deaths=child.restarts.deaths_in_window,
                window_s=policy.flap_window_s,
            )
            self._begin_stop(
                f"{child.role} flapping ({policy.flap_deaths} deaths in {policy.flap_window_s:g} s)", 1, now
            )
            return
        child.restart_at = now + delay
        log_event(
            log,
            "restart_scheduled",
            role=child.role,
            delay_s=round(delay, 3),
            consecutive_deaths=child.restarts.consecutive_deaths,
            last_exit=describe_exit(child.last_exit),
        )

    def _restart_due(self, now: float) -> None:
        for child in self.children.values():
            if (
                child.restart_at is not None
                and now >= child.restart_at
                and self.stop_phase == StopPhase.RUNNING
            ):
                self._start(child, now)

    # --- stopping -----------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> tuple[int, Any]:
        """Handlers that record the signal, and a self-pipe that wakes the poll; returns (pipe, restore)."""
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

        def record(signum: int, _frame: FrameType | None) -> None:
            self._signals.append(signum)

        previous = {s: signal.signal(s, record) for s in STOP_SIGNALS}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

        def restore() -> None:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(read_fd)
            os.close(write_fd)

        return read_fd, restore

    def _handle_signals(self, now: float) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if self.stop_phase == StopPhase.RUNNING:
                self._begin_stop(f"{name} received", 0, now)
            else:
                log_event(log, "stop_hurried", signal=name, waiting_for=self.stop_phase.value)
                self.stop_deadline = now

    def _begin_stop(self, reason: str, exit_code: int, now: float) -> None:
        self.stop_reason = reason
        self.exit_code = exit_code
        log_event(log, "stopping", reason=reason)
        self.notifier.stopping()
        for child in self.children.values():
            child.restart_at = None
        self._enter_stop_phase(StopPhase.API, self.config.api.drain_timeout_s + self.api_grace_s, now)

    def _enter_stop_phase(self, phase: StopPhase, wait_s: float, now: float) -> None:
        role = _ROLE_OF_PHASE[phase]
        self.stop_phase = phase
        self.stop_deadline = now + wait_s
        self.notifier.status(f"stopping ({self.stop_reason}): waiting for {role}")
        child = self.children[role]
        if child.running:
            log_event(log, "child_stopping", role=role, pid=child.pid, kill_after_s=round(wait_s, 3))
            child.terminate()

    def _advance_stop(self, now: float) -> None:
        if self.stop_phase == StopPhase.API and not self.children[Role.API].running:
            self._enter_stop_phase(StopPhase.WORKER, self.worker_grace_s, now)
        if self.stop_phase == StopPhase.WORKER and not self.children[Role.WORKER].running:
            self.stop_phase = StopPhase.DONE
        if self.stop_phase in _ROLE_OF_PHASE and now >= self.stop_deadline:
            child = self.children[_ROLE_OF_PHASE[self.stop_phase]]
            if not child.kill_sent:
                log_event(log, "child_killed", logging.WARNING, role=child.role, pid=child.pid)
                child.kill()

    def _kill_remaining(self) -> None:
        """Last resort on the way out (normally nothing is left): no child outlives the supervisor."""
        for child in self.children.values():
            process = child.process
            if process is not None:
                child.kill()
                fields = exit_fields(process.wait())
                log_event(log, "child_exited", role=child.role, pid=process.pid, **fields)

    # --- systemd ------------------------------------------------------------------------------------

    def _notify(self, now: float) -> None:
        if self.stop_phase != StopPhase.RUNNING:
            self.notifier.watchdog(now)  # the stop is bounded by its own deadlines
            return
        api, worker = self.children[Role.API], self.children[Role.WORKER]
        timeout = self.config.worker.heartbeat_timeout_s
        self.notifier.status(status_line(api, worker, now, timeout))
        # Ready when the API listens and says it can serve (its /health/ready): the worker is up and the
        # scheduler has the models on the device, or can take its turn.
        serving = api.healthy and worker.healthy and api.status is not None and api.status.worker_ready
        if not self.notifier.ready_sent and serving:
            self.notifier.ready()
            startup_s = round(now - self.started_at, 3)
            log_event(log, "ready", startup_s=startup_s, model=worker.status.model if worker.status else "")
        if all(c.heard_within(now, timeout) or c.restart_at is not None for c in (api, worker)):
            self.notifier.watchdog(now)
        loading = worker.state in _LOADING_STATES and worker.heard_within(now, timeout)
        within_start = now - self.started_at < self.config.worker.start_timeout_s
        if not self.notifier.ready_sent and loading and within_start:
            self.notifier.extend_start_timeout(now)


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
