"""The worker's compute thread: owns the backend, takes and gives back the device, serves the work.

Nothing else calls the backend. At start it prepares what needs no device (STARTING, then RELEASED);
from then on the API's scheduler decides when the models go on the device (Load) and come off it
(Release): the device is a turn taken with hailo-ollama, never assumed. A load that finds the device
held is retried with backoff (NPU_BUSY); a release waits until no generation is running or queued.

Generations run one at a time in arrival order and are pulled one token at a time, so an abort or a
deadline is noticed between two tokens and CLIP batches are served in between (`batching.next_step`
decides). Results go out through `emit`, which sends them to the API on this thread's own socket.

`step()` makes one decision and carries it out without waiting, with the clock injected: the tests
drive the loop that way, without a thread and without sleeping.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from npu_worker.backend import (
    Backend,
    BackendError,
    DeviceFailedError,
    ModelInfo,
    Placement,
    ReleaseScope,
)
from npu_worker.batching import Next, WorkState, next_step
from npu_worker.clip_work import ClipWork, EmbedJob, take_batch
from npu_worker.config import Config
from npu_worker.device_turn import DeviceTurn
from npu_worker.generation import GenerateJob, Generation
from npu_worker.logs import log_event
from npu_worker.protocol import Error, Limits, Wire
from npu_worker.states import WorkerState
from npu_worker.step_watch import Step, StepWatch
from npu_worker.text_cache import TextEmbeddingCache, cache_path

log = logging.getLogger("npu_worker.engine")

Emit = Callable[[Wire], None]


@dataclass
class EngineFigures:
    """Counters the API's /metrics reads over the protocol."""

    tokens_generated: int = 0
    requests_finished: int = 0
    requests_failed: int = 0
    requests_cancelled: int = 0


class Engine:
    def __init__(
        self,
        backend: Backend,
        emit: Emit,
        on_fatal: Callable[[str], None],
        config: Config,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        clip, scheduler, max_batch = config.clip, config.scheduler, config.resources.max_batch_size
        self.backend = backend
        self.emit = emit
        self.on_fatal = on_fatal
        self.clip_config = clip
        self.clock = clock
        self.watch = StepWatch(clock, config.inference.timeout_s, {Step.LOAD: config.worker.start_timeout_s})
        self.device = DeviceTurn(backend, scheduler.load_retry_initial_s, scheduler.load_retry_max_s, clock)
        self.clip_beside_ollama = scheduler.ollama_shares_device and bool(scheduler.ollama_url)
        self.models: list[ModelInfo] = []
        self.details: dict[str, Any] = {}
        self.clip_placement = Placement.NONE
        self.figures = EngineFigures()
        self.text_cache_bytes = int(clip.text_cache_mb * 2**20)
        self.cache = TextEmbeddingCache(self.text_cache_bytes)
        self.cache_file = cache_path(clip.cache_file)
        self.clip = ClipWork(backend, self.cache, max_batch, clock)
        self.max_batch = max(1, max_batch)
        self.batch_wait_s = clip.batch_wait_ms / 1000.0
        self.generation_pause_s = 0.0  # the degradation ladder's pause between two generations
        self._cache_share: float | None = None  # the ladder's new share of the caches, until applied
        self._generation_ended = -math.inf
        self._generations: collections.deque[GenerateJob] = collections.deque()
        self._clip_jobs: list[EmbedJob] = []
        self._clip_batch_ended = -math.inf
        self._last_batch_images = 0
        self._jobs: dict[str, GenerateJob | EmbedJob] = {}
        self._active: Generation | None = None
        self._wake = threading.Condition()
        self._stopping = False
        self._last_save = clock()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)

    # --- called from the socket thread -------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
        return self.device.state

    @property
    def detail(self) -> str:
        return self.device.detail

    @property
    def active_rid(self) -> str | None:
        active = self._active
        return active.job.rid if active is not None else None

    def start(self) -> None:
        self._thread.start()

    def request_load(self, reason: str) -> None:
        with self._wake:
            self.device.ask_load(reason)
            self._wake.notify()

    def request_release(self, scope: ReleaseScope, reason: str) -> None:
        with self._wake:
            self.device.ask_release(scope, reason)
            if self.state != WorkerState.READY:  # generations queued for a load now called off
                while self._generations:
                    job = self._generations.popleft()
                    self._jobs.pop(job.rid, None)
                    self.fail(job.rid, "npu_released", f"the models were given back: {reason}")
            self._wake.notify()

    def apply_limits(self, limits: Limits) -> None:
        """What the degradation ladder allows now: CLIP batch size, pause, and the caches' share (the text
        cache and the backend's kept contexts, shrunk on the compute thread, which alone uses them)."""
        with self._wake:
            self.max_batch = self.clip.max_batch = max(1, limits.max_batch)
            self.generation_pause_s = limits.generation_pause_s
            self._cache_share = limits.cache_share
            self._wake.notify()
        share = limits.cache_share
        log_event(
            log,
            "limits_applied",
            max_batch=limits.max_batch,
            pause_s=limits.generation_pause_s,
            cache_share=share,
        )

    def refusal(self, job: GenerateJob | EmbedJob) -> tuple[str, str] | None:
        """Why a job cannot be queued now (error code, message), or None when it can."""
        if isinstance(job, EmbedJob) and self.clip_placement != Placement.NONE:
            return None
        if self.state == WorkerState.READY:
            return None
        # Told to load and loading (or about to): the job waits for READY. The scheduler may have let
        # it through on a heartbeat sent just before a release it had already called off.
        if self.device.want_loaded and self.state in (WorkerState.RELEASED, WorkerState.LOADING):
            return None
        code = {WorkerState.RELEASED: "npu_released", WorkerState.NPU_BUSY: "npu_busy"}
        return code.get(self.state, "model_loading"), f"the models are not on the device: {self.detail}"

    def submit(self, job: GenerateJob | EmbedJob) -> None:
        with self._wake:
            job.received = self.clock()
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

    def stop(self, join_s: float) -> None:
        self.abort_all()
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=join_s)

    def fail(self, rid: str, code: str, message: str, param: str | None = None) -> None:
        self.figures.requests_failed += 1
        self.emit(Error(rid, code, message, param))

    # --- the compute thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.prepare():
                self._loop()
        except Exception as exc:  # a bug here must end the worker (and be restarted), never hang it
            log.exception("engine_crashed")
            self.on_fatal(f"the compute thread failed: {exc!r}")

    def _loop(self) -> None:
        while True:
            with self._wake:
                step, wait_s = self._decide()
                if step == Step.WAIT:
                    self._wake.wait(wait_s if math.isfinite(wait_s) else None)
                    continue
            if step == Step.STOP:
                break
            self._carry_out(step)
        self._save_cache()
        self.backend.unload()

    def step(self) -> tuple[Step, float]:
        """Decide and carry out one step without waiting (for the tests); WAIT comes with its seconds."""
        with self._wake:
            step, wait_s = self._decide()
        if step not in (Step.WAIT, Step.STOP):
            self._carry_out(step)
        return step, wait_s

    def prepare(self) -> bool:
        """What needs no device, once; False when the models cannot be served at all."""
        try:
            self.backend.prepare()
            if self.clip_beside_ollama and self.backend.uses_device:
                self.device.place_clip()
        except Exception as exc:  # a broken model directory ends the worker; the supervisor decides
            self._fail_load(exc)
            return False
        self.device.prepared()
        self._describe()
        clip = next((m for m in self.models if m.kind == "clip"), None)
        if clip is not None and clip.embedding_dim is not None:
            self.clip.warm(clip.id, clip.embedding_dim, self.cache_file, self.clip_config)
        return True

    def _decide(self) -> tuple[Step, float]:
        """Under the lock: the next step, or WAIT with how long until something is due."""
        if self._stopping:
            return Step.STOP, 0.0
        if self._cache_share is not None:
            return Step.SHRINK_CACHES, 0.0
        now = self.clock()
        pending = self._active is not None or bool(self._generations) or bool(self._clip_jobs)
        if self.device.release_due(pending):
            return Step.RELEASE, 0.0
        due: list[float] = []
        if (load_in := self.device.load_due_in(now)) is not None:
            if load_in <= 0:
                return Step.LOAD, 0.0
            due.append(load_in)
        oldest = min((job.received for job in self._clip_jobs), default=now)
        decision = next_step(
            WorkState(
                clip_images=sum(len(job.images) for job in self._clip_jobs),
                clip_text_only=any(not job.images for job in self._clip_jobs),
                clip_oldest_wait_s=now - oldest,
                encoder_idle_s=now - self._clip_batch_ended,
                last_batch_images=self._last_batch_images,
                generating=self._active is not None,
                generations_queued=len(self._generations) if self.state == WorkerState.READY else 0,
            ),
            self.max_batch,
            self.batch_wait_s,
        )
        if decision.action == Next.CLIP:
            return Step.CLIP, 0.0
        if decision.action == Next.START:
            pause_left = self._generation_ended + self.generation_pause_s - now
            if pause_left <= 0:
                return Step.START, 0.0
            due.append(pause_left)
        if decision.action == Next.TOKEN:
            return Step.TOKEN, 0.0
        if decision.action == Next.WAIT:
            if any(job.prompts is None for job in self._clip_jobs):
                return Step.PREPARE_PROMPTS, 0.0  # use the wait: the prompts are ready when it runs
            due.append(decision.wait_s)
        elif (save_in := self.cache.save_due_in(now, self._last_save)) is not None:
            if save_in <= 0:
                return Step.SAVE_CACHE, 0.0
            due.append(save_in)
        return Step.WAIT, min(due, default=math.inf)

    def _carry_out(self, step: Step) -> None:
        with self.watch.running(step):
            self._do(step)

    def _do(self, step: Step) -> None:
        if step == Step.RELEASE:
            self._release()
        elif step == Step.LOAD:
            self._load()
        elif step == Step.CLIP:
            with self._wake:
                batch = take_batch(self._clip_jobs, self.max_batch)
                del self._clip_jobs[: len(batch)]
            self._run_clip(batch)
        elif step == Step.START:
            with self._wake:
                generation = self._generations.popleft()
            self._active = Generation(self, generation, self.clock)
            self._advance()
        elif step == Step.TOKEN:
            self._advance()
        elif step == Step.PREPARE_PROMPTS:
            for job in [job for job in self._clip_jobs if job.prompts is None]:
                self.clip.prepare(job)
        elif step == Step.SAVE_CACHE:
            self._save_cache()
        elif step == Step.SHRINK_CACHES:
            with self._wake:
                share, self._cache_share = self._cache_share, None
            if share is not None:
                self.cache.resize(int(self.text_cache_bytes * share))
                self.backend.limit_kept_contexts(share)

    def _advance(self) -> None:
        active = self._active
        if active is not None and active.step():
            self._active = None
            self._generation_ended = self.clock()
            with self._wake:
                self._jobs.pop(active.job.rid, None)

    def _run_clip(self, batch: list[EmbedJob]) -> None:
        """Answer each job the moment its embeddings are ready."""
        try:
            for job, answer in self.clip.serve(batch):
                if isinstance(answer, BackendError):
                    self.fail(job.rid, answer.code, answer.message, getattr(answer, "param", None))
                    if isinstance(answer, DeviceFailedError):  # as for generations: the worker restarts
                        self.on_fatal(answer.message)
                else:
                    self.figures.requests_finished += 1
                    self.emit(answer)
                with self._wake:
                    self._jobs.pop(job.rid, None)
        finally:
            self._clip_batch_ended = self.clock()
            self._last_batch_images = sum(len(job.images) for job in batch) or self._last_batch_images

    def _load(self) -> None:
        try:
            loaded = self.device.load()
        except Exception as exc:  # a load failure ends the worker; the supervisor decides on restarts
            self._fail_load(exc)
            return
        self._describe()
        if loaded:
            log_event(
                log,
                "models_loaded",
                models=",".join(m.id for m in self.models),
                seconds=round(self.device.load_seconds, 3),
                clip=self.clip_placement,
            )

    def _release(self) -> None:
        self.device.release()
        self._describe()
        log_event(log, "models_released", scope=self.device.scope, clip=self.clip_placement)

    def _fail_load(self, exc: Exception) -> None:
        message = exc.message if isinstance(exc, BackendError) else repr(exc)
        self.device.failed(message)
        log_event(log, "model_load_failed", logging.ERROR, error=message)
        self.on_fatal(message)

    def _describe(self) -> None:
        self.models = self.backend.describe()
        self.details = self.backend.details()
        self.clip_placement = self.backend.clip_placement()

    def _save_cache(self) -> None:
        self._last_save = self.clock()
        self.cache.save_quietly(self.cache_file)
