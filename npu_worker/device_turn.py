"""The worker's side of the turns on the NPU: its state, what the scheduler last asked, and the retries.

The scheduler (in the API process) decides; the worker only does what it was last told, when it
safely can: a Load is attempted at once and, while another process holds the device, again after
`load_retry_initial_s` doubling up to `load_retry_max_s` (each HailoRT attempt itself waits about
5 s); a Release waits until no generation runs or is queued. Called from the compute thread only,
except `ask_*`, which the socket thread calls under the engine's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from npu_worker.backend import Backend, DeviceBusyError, ReleaseScope
from npu_worker.logs import log_event
from npu_worker.states import WorkerState

log = logging.getLogger("npu_worker.device")

# The states in which something is (or is being put) on the device.
ON_DEVICE = (WorkerState.READY, WorkerState.LOADING, WorkerState.NPU_BUSY)


class DeviceTurn:
    def __init__(
        self, backend: Backend, retry_initial_s: float, retry_max_s: float, clock: Callable[[], float]
    ) -> None:
        self.backend = backend
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self.state = WorkerState.STARTING
        self.detail = "starting"
        self.load_seconds = 0.0
        self.want_loaded = False  # the scheduler's last word: Load (True) or Release (False)
        self.scope = ReleaseScope.DEVICE
        self.retry_at = 0.0
        self._busy_attempts = 0

    def ask_load(self, reason: str) -> None:
        if not self.want_loaded:
            log_event(log, "load_requested", reason=reason)
        self.want_loaded, self.retry_at = True, self.clock()

    def ask_release(self, scope: ReleaseScope, reason: str) -> None:
        if self.want_loaded:
            log_event(log, "release_requested", scope=scope, reason=reason)
        self.want_loaded, self.scope = False, scope

    def release_due(self, work_pending: bool) -> bool:
        return not self.want_loaded and self.state in ON_DEVICE and not work_pending

    def load_due_in(self, now: float) -> float | None:
        """Seconds until the next load attempt (<= 0: now); None when no load is wanted."""
        if not self.want_loaded or self.state == WorkerState.READY:
            return None
        return self.retry_at - now

    def retry_in_s(self) -> float | None:
        """While the device is busy: seconds until the next load attempt."""
        if self.state != WorkerState.NPU_BUSY:
            return None
        return max(0.0, self.retry_at - self.clock())

    def prepared(self) -> None:
        self.state, self.detail = WorkerState.RELEASED, "ready to load on request"

    def failed(self, message: str) -> None:
        self.state, self.detail = WorkerState.FAILED, message

    def load(self) -> bool:
        """One attempt at taking the device: True when loaded; busy -> retried later with backoff.
        Any other failure is raised (it ends the worker)."""
        self.state, self.detail = WorkerState.LOADING, f"loading {self.backend.name} backend"
        started = self.clock()
        try:
            self.backend.load()
        except DeviceBusyError as exc:
            retry_s = min(self.retry_max_s, self.retry_initial_s * 2**self._busy_attempts)
            self._busy_attempts += 1
            self.retry_at = self.clock() + retry_s
            self.state, self.detail = WorkerState.NPU_BUSY, exc.message
            log_event(log, "npu_busy", logging.WARNING, detail=exc.message, retry_s=retry_s)
            return False
        self._busy_attempts = 0
        self.load_seconds = self.clock() - started
        self.state, self.detail = WorkerState.READY, "ready"
        return True

    def place_clip(self) -> None:
        """Put CLIP on the device without the VLM (hailo-ollama shares the VDevice group, so both fit);
        a held device leaves it on the CPU until the next load."""
        try:
            self.backend.load(vlm=False)
        except DeviceBusyError as exc:
            log_event(log, "clip_stays_on_cpu", logging.WARNING, detail=exc.message)

    def release(self) -> None:
        self.backend.release(self.scope)
        self._busy_attempts = 0
        self.state, self.detail = WorkerState.RELEASED, f"released ({self.scope})"
