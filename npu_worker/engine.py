"""The worker's compute thread: loads the backend, then runs its work one job at a time in arrival order.

It owns the backend; nothing else calls it. Generations are pulled one token at a time, so an abort or
a deadline is noticed between two tokens and the generation is closed there. Events go out through
`emit`, which the socket thread makes safe to call from here.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npu_worker.backend import (
    Backend,
    BackendError,
    DeviceBusyError,
    DeviceFailedError,
    Finish,
    GenerationEvent,
    Message,
    ModelInfo,
    SamplingParams,
)
from npu_worker.protocol import Kind, WorkerState
from supervisor.logs import log_event

log = logging.getLogger("npu_worker.engine")

Emit = Callable[[Kind, dict[str, Any], list[np.ndarray]], None]
NPU_BUSY_RETRY_S = 5.0


@dataclass
class GenerateJob:
    rid: str
    model: str
    messages: list[Message]
    params: SamplingParams
    timeout_s: float
    received: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class EngineFigures:
    """Counters the API's /metrics reads over the protocol."""

    model_load_seconds: float = 0.0
    tokens_generated: int = 0
    requests_finished: int = 0
    requests_failed: int = 0
    requests_cancelled: int = 0


class Engine:
    def __init__(self, backend: Backend, emit: Emit, on_fatal: Callable[[str], None]) -> None:
        self.backend = backend
        self.emit = emit
        self.on_fatal = on_fatal
        self.state = WorkerState.LOADING
        self.detail = "starting"
        self.models: list[ModelInfo] = []
        self.details: dict[str, Any] = {}
        self.figures = EngineFigures()
        self.active_rid: str | None = None
        self._queue: collections.deque[GenerateJob] = collections.deque()
        self._jobs: dict[str, GenerateJob] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)

    # --- called from the socket thread -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: GenerateJob) -> None:
        with self._wake:
            self._jobs[job.rid] = job
            self._queue.append(job)
            self._wake.notify()

    def abort(self, rid: str) -> None:
        """Drop a queued job, or stop a running one at its next token."""
        with self._wake:
            job = self._jobs.pop(rid, None)
            if job is None:
                return
            job.cancelled.set()
            if job in self._queue:
                self._queue.remove(job)
                self.figures.requests_cancelled += 1

    def abort_all(self) -> int:
        """Abort every queued and running job (their requester is gone); returns how many."""
        with self._wake:
            rids = list(self._jobs)
        for rid in rids:
            self.abort(rid)
        return len(rids)

    def queued(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        self.abort_all()
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # --- the compute thread ------------------------------------------------------------------------

    def _run(self) -> None:
        if not self._load():
            return
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    break
                job = self._queue.popleft()
            self.active_rid = job.rid
            try:
                self._generate(job)
            finally:
                self.active_rid = None
                with self._wake:
                    self._jobs.pop(job.rid, None)
        self.backend.unload()

    def _load(self) -> bool:
        while not self._stopping:
            self.state, self.detail = WorkerState.LOADING, f"loading {self.backend.name} backend"
            started = time.monotonic()
            try:
                self.backend.load()
            except DeviceBusyError as exc:
                self.state, self.detail = WorkerState.NPU_BUSY, exc.message
                log_event(log, "npu_busy", logging.WARNING, detail=exc.message, retry_s=NPU_BUSY_RETRY_S)
                with self._wake:
                    self._wake.wait(NPU_BUSY_RETRY_S)
                continue
            except Exception as exc:  # a load failure ends the worker; the supervisor decides on restarts
                message = exc.message if isinstance(exc, BackendError) else repr(exc)
                self.state, self.detail = WorkerState.FAILED, message
                log_event(log, "model_load_failed", logging.ERROR, error=message)
                self.on_fatal(message)
                return False
            self.figures.model_load_seconds = time.monotonic() - started
            self.models = self.backend.describe()
            self.details = self.backend.details()
            self.state, self.detail = WorkerState.READY, "ready"
            log_event(
                log,
                "models_loaded",
                models=",".join(m.id for m in self.models),
                seconds=round(self.figures.model_load_seconds, 3),
            )
            return True
        return False

    def _generate(self, job: GenerateJob) -> None:
        started = time.monotonic()
        deadline = job.received + job.timeout_s
        first_token_at: float | None = None
        events: Iterator[GenerationEvent] | None = None
        try:
            if job.cancelled.is_set():
                return
            events = self.backend.generate(job.model, job.messages, job.params)
            for event in events:
                if job.cancelled.is_set():
                    self.figures.requests_cancelled += 1
                    return
                if isinstance(event, Finish):
                    self.figures.requests_finished += 1
                    self.emit(
                        Kind.FINAL,
                        {
                            "rid": job.rid,
                            "reason": event.reason,
                            "prompt_tokens": event.prompt_tokens,
                            "completion_tokens": event.completion_tokens,
                            "queue_wait_s": started - job.received,
                            "ttft_s": (first_token_at or time.monotonic()) - started,
                            "compute_s": time.monotonic() - started,
                        },
                        [],
                    )
                    return
                self.figures.tokens_generated += 1
                first_token_at = first_token_at or time.monotonic()
                if event.text:
                    self.emit(Kind.TOKEN, {"rid": job.rid, "text": event.text, "id": event.token_id}, [])
                if time.monotonic() > deadline:
                    self._fail(job, "timeout", f"generation exceeded its {job.timeout_s:g} s timeout")
                    return
        except DeviceFailedError as exc:
            self._fail(job, exc.code, exc.message)
            self.on_fatal(exc.message)
        except BackendError as exc:
            self._fail(job, exc.code, exc.message, getattr(exc, "param", None))
        except Exception as exc:
            log.exception("generation_crashed", extra={"fields": {"rid": job.rid}})
            self._fail(job, "internal_error", f"the backend failed: {exc!r}")
        finally:
            if events is not None and hasattr(events, "close"):
                events.close()  # leaves the backend's generation context: aborts device work

    def _fail(self, job: GenerateJob, code: str, message: str, param: str | None = None) -> None:
        self.figures.requests_failed += 1
        self.emit(Kind.ERROR, {"rid": job.rid, "code": code, "message": message, "param": param}, [])
