"""The worker's compute thread: loads the backend, then serves generations and CLIP work.

It owns the backend; nothing else calls it. Generations run one at a time in arrival order and are
pulled one token at a time, so an abort or a deadline is noticed between two tokens and CLIP batches
are served in between (`batching.next_step` decides). Results go out through `emit`, which sends
them to the API on this thread's own socket.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
from npu_worker.batching import WorkState, next_step
from npu_worker.clip_work import ClipWork, EmbedJob, EmbedResult, take_batch
from npu_worker.config import ClipConfig
from npu_worker.logs import log_event
from npu_worker.protocol import Kind, WorkerState
from npu_worker.text_cache import TextEmbeddingCache

log = logging.getLogger("npu_worker.engine")

Emit = Callable[[Kind, dict[str, Any], list[np.ndarray]], None]
CACHE_SAVE_INTERVAL_S = 30.0


@dataclass
class GenerateJob:
    rid: str
    model: str
    messages: list[Message]
    params: SamplingParams
    timeout_s: float
    stream: bool = True  # False: the text comes whole in FINAL, no TOKEN frames
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


def cache_path(configured: str) -> Path | None:
    """Where the text-embedding cache lives: configured, else systemd's state directory, else nowhere."""
    if configured:
        return Path(configured)
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / "clip-text-cache.npz" if state else None


class _Generation:
    """One running generation, advanced one event at a time."""

    def __init__(self, engine: Engine, job: GenerateJob) -> None:
        self.engine = engine
        self.job = job
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self.deadline = job.received + job.timeout_s
        self.events: Iterator[GenerationEvent] | None = None
        self.text: list[str] = []

    def step(self) -> bool:
        """Advance by one event; True when the generation is over (finished, failed or cancelled)."""
        job, engine = self.job, self.engine
        try:
            if job.cancelled.is_set():
                engine.figures.requests_cancelled += 1
                return self.close()
            if self.events is None:
                self.events = engine.backend.generate(job.model, job.messages, job.params)
            event = next(self.events)
            if isinstance(event, Finish):
                engine.figures.requests_finished += 1
                engine.emit(Kind.FINAL, self._final(event), [])
                return self.close()
            engine.figures.tokens_generated += 1
            self.first_token_at = self.first_token_at or time.monotonic()
            if event.text and job.stream:
                engine.emit(Kind.TOKEN, {"rid": job.rid, "text": event.text, "id": event.token_id}, [])
            elif event.text:
                self.text.append(event.text)
            if time.monotonic() > self.deadline:
                engine.fail(job.rid, "timeout", f"generation exceeded its {job.timeout_s:g} s timeout")
                return self.close()
            return False
        except StopIteration:
            engine.fail(job.rid, "internal_error", "the backend ended a generation without a finish")
        except DeviceFailedError as exc:
            engine.fail(job.rid, exc.code, exc.message)
            engine.on_fatal(exc.message)
        except BackendError as exc:
            engine.fail(job.rid, exc.code, exc.message, getattr(exc, "param", None))
        except Exception as exc:
            log.exception("generation_crashed", extra={"fields": {"rid": job.rid}})
            engine.fail(job.rid, "internal_error", f"the backend failed: {exc!r}")
        return self.close()

    def _final(self, event: Finish) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "rid": self.job.rid,
            "text": "".join(self.text),
            "reason": event.reason,
            "prompt_tokens": event.prompt_tokens,
            "completion_tokens": event.completion_tokens,
            "queue_wait_s": self.started - self.job.received,
            "ttft_s": (self.first_token_at or now) - self.started,
            "compute_s": now - self.started,
        }

    def close(self) -> bool:
        if self.events is not None and hasattr(self.events, "close"):
            self.events.close()  # leaves the backend's generation context: aborts device work
        return True


class Engine:
    def __init__(
        self, backend: Backend, emit: Emit, on_fatal: Callable[[str], None], clip: ClipConfig, max_batch: int
    ) -> None:
        self.backend = backend
        self.emit = emit
        self.on_fatal = on_fatal
        self.clip_config = clip
        self.state = WorkerState.LOADING
        self.detail = "starting"
        self.models: list[ModelInfo] = []
        self.details: dict[str, Any] = {}
        self.figures = EngineFigures()
        self.cache = TextEmbeddingCache(int(clip.text_cache_mb * 2**20))
        self.cache_file = cache_path(clip.cache_file)
        self.clip = ClipWork(backend, self.cache, max_batch)
        self.max_batch = max(1, max_batch)
        self.batch_wait_s = clip.batch_wait_ms / 1000.0
        self._generations: collections.deque[GenerateJob] = collections.deque()
        self._clip_jobs: list[EmbedJob] = []
        self._clip_batch_ended = -math.inf
        self._last_batch_images = 0
        self._jobs: dict[str, GenerateJob | EmbedJob] = {}
        self._active: _Generation | None = None
        self._wake = threading.Condition()
        self._stopping = False
        self._last_save = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)

    # --- called from the socket thread -------------------------------------------------------------

    @property
    def active_rid(self) -> str | None:
        active = self._active
        return active.job.rid if active is not None else None

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: GenerateJob | EmbedJob) -> None:
        with self._wake:
            self._jobs[job.rid] = job
            if isinstance(job, EmbedJob):
                self._clip_jobs.append(job)
            else:
                self._generations.append(job)
            self._wake.notify()

    def abort(self, rid: str) -> None:
        """Drop a queued job, or stop a running generation at its next token."""
        with self._wake:
            job = self._jobs.pop(rid, None)
            if job is None:
                return
            job.cancelled.set()
            if isinstance(job, GenerateJob) and job in self._generations:
                self._generations.remove(job)
                self.figures.requests_cancelled += 1
            elif isinstance(job, EmbedJob) and job in self._clip_jobs:
                self._clip_jobs.remove(job)

    def abort_all(self) -> int:
        """Abort every queued and running job (their requester is gone); returns how many."""
        with self._wake:
            rids = list(self._jobs)
        for rid in rids:
            self.abort(rid)
        return len(rids)

    def queued(self) -> int:
        return len(self._generations) + len(self._clip_jobs)

    def stop(self) -> None:
        self.abort_all()
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def fail(self, rid: str, code: str, message: str, param: str | None = None) -> None:
        self.figures.requests_failed += 1
        self.emit(Kind.ERROR, {"rid": rid, "code": code, "message": message, "param": param}, [])

    def cache_figures(self) -> dict[str, Any]:
        return {
            "text_cache_hits": self.cache.hits,
            "text_cache_misses": self.cache.misses,
            "text_cache_entries": len(self.cache),
            "text_cache_bytes": self.cache.bytes,
            "clip_encoder_runs": self.clip.encoder_runs,
            "clip_images_encoded": self.clip.images_encoded,
        }

    # --- the compute thread ------------------------------------------------------------------------

    def _run(self) -> None:
        if not self._load():
            return
        self._warm_cache()
        while True:
            with self._wake:
                action, work = self._next_work()
            if action == "stop":
                break
            if action == "clip":
                self._run_clip(work)
            elif action == "start":
                self._active = _Generation(self, work)
                self._step()
            elif action == "token":
                self._step()
            elif action == "prepare":
                for job in work:
                    self.clip.prepare(job)
            elif action == "save":
                self._save_cache()
        self._save_cache()
        self.backend.unload()

    def _next_work(self) -> tuple[str, Any]:
        """Under the lock: wait until there is something to do, then take it."""
        while not self._stopping:
            now = time.monotonic()
            oldest = min((job.received for job in self._clip_jobs), default=now)
            state = WorkState(
                clip_images=sum(len(job.images) for job in self._clip_jobs),
                clip_text_only=any(not job.images for job in self._clip_jobs),
                clip_oldest_wait_s=now - oldest,
                encoder_idle_s=now - self._clip_batch_ended,
                last_batch_images=self._last_batch_images,
                generating=self._active is not None,
                generations_queued=len(self._generations),
            )
            decision = next_step(state, self.max_batch, self.batch_wait_s)
            if decision.action == "idle":
                if self.cache.dirty:
                    due_in = self._last_save + CACHE_SAVE_INTERVAL_S - now
                    if due_in <= 0:
                        return "save", None
                    self._wake.wait(due_in)
                else:
                    self._wake.wait()
            elif decision.action == "wait":
                unprepared = [job for job in self._clip_jobs if job.prompts is None]
                if unprepared:  # use the wait: the batch's prompts are then ready when it runs
                    return "prepare", unprepared
                self._wake.wait(decision.wait_s)
            elif decision.action == "clip":
                batch = take_batch(self._clip_jobs, self.max_batch)
                del self._clip_jobs[: len(batch)]
                return "clip", batch
            elif decision.action == "start":
                return "start", self._generations.popleft()
            else:
                return "token", None
        return "stop", None

    def _step(self) -> None:
        active = self._active
        if active is not None and active.step():
            self._active = None
            with self._wake:
                self._jobs.pop(active.job.rid, None)

    def _run_clip(self, batch: list[EmbedJob]) -> None:
        """Answer each job the moment its embeddings are ready; a crash fails the rest, not the worker."""
        unanswered = {job.rid: job for job in batch if not job.cancelled.is_set()}
        try:
            for outcome in self.clip.run(list(unanswered.values())):
                del unanswered[self._answer_clip(outcome)]
        except Exception as exc:
            log.exception("clip_batch_crashed")
            for job in unanswered.values():
                self._answer_clip((job, BackendError(f"the backend failed: {exc!r}")))
        finally:
            self._clip_batch_ended = time.monotonic()
            self._last_batch_images = sum(len(job.images) for job in batch) or self._last_batch_images

    def _answer_clip(self, outcome: EmbedResult | tuple[EmbedJob, BackendError]) -> str:
        """Send one job's embeddings or error; returns its request id."""
        if isinstance(outcome, EmbedResult):
            self.figures.requests_finished += 1
            self.emit(Kind.EMBEDDINGS, outcome.fields, outcome.arrays)
            rid = outcome.job.rid
        else:
            job, error = outcome
            self.fail(job.rid, error.code, error.message, getattr(error, "param", None))
            if isinstance(error, DeviceFailedError):  # as for generations: the worker must restart
                self.on_fatal(error.message)
            rid = job.rid
        with self._wake:
            self._jobs.pop(rid, None)
        return rid

    def _load(self) -> bool:
        while not self._stopping:
            self.state, self.detail = WorkerState.LOADING, f"loading {self.backend.name} backend"
            started = time.monotonic()
            try:
                self.backend.load()
            except DeviceBusyError as exc:
                self.state, self.detail = WorkerState.NPU_BUSY, exc.message
                log_event(log, "npu_busy", logging.WARNING, detail=exc.message, retry_s=exc.retry_after_s)
                with self._wake:
                    self._wake.wait(exc.retry_after_s)
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

    def _clip_model(self) -> ModelInfo | None:
        return next((m for m in self.models if m.kind == "clip"), None)

    def _warm_cache(self) -> None:
        """Load the saved text embeddings, then compute the configured preload prompts."""
        model = self._clip_model()
        if model is None or model.embedding_dim is None:
            return
        if self.cache_file is not None:
            self.cache.load(self.cache_file, model.embedding_dim)
        prompts = list(self.clip_config.preload_prompts)
        if prompts:
            for templates in ((), self.clip_config.templates):
                self.clip.text_embeddings(model.id, prompts, templates)
            log_event(log, "prompts_preloaded", count=len(prompts))

    def _save_cache(self) -> None:
        self._last_save = time.monotonic()
        if self.cache_file is None or not self.cache.dirty:
            return
        try:
            self.cache.save(self.cache_file)
        except OSError as exc:
            log_event(
                log, "text_cache_save_failed", logging.WARNING, path=str(self.cache_file), error=str(exc)
            )
