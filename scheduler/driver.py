"""The scheduler at work in the API process: it runs the turn policy against the live world.

It sees the worker through its heartbeats, hailo-ollama through /api/ps (polled, and read afresh
before taking the device), and the vision work through `turn()`, which every request to the worker
passes: work that needs the device waits there (bounded by `scheduler.turn_timeout_s`) until it is
hailo-vision's turn, and counts as in flight until it ends. What the policy decides it carries out:
Load and Release to the worker, the unload request to hailo-ollama.

Why the API process: it holds the queue and the admission (503 + Retry-After), it already talks to
the worker and is asyncio (hailo-ollama's HTTP calls wait without a thread), and what it knows is
what /health and /admin/status show. The worker stays the one owner of the device and only does what
it is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from npu_worker.backend import Placement, ReleaseScope
from npu_worker.config import Config
from npu_worker.logs import log_event
from npu_worker.protocol import Heartbeat, Limits
from npu_worker.states import WorkerState
from scheduler.guard import Guard
from scheduler.ladder import Ladder
from scheduler.ollama import OllamaClient
from scheduler.policy import TurnPolicy
from scheduler.snapshot import Snapshot
from scheduler.turn_types import (
    Action,
    ActionKind,
    Demand,
    Observation,
    OllamaView,
    Phase,
    Settings,
)

log = logging.getLogger("scheduler")
DEFAULT_SWITCH_S = 15.0  # Retry-After while waiting for a turn, before any switch was measured


class Work(enum.Enum):
    GENERATE = "generate"
    CLIP = "clip"


class Side:
    """One side's work that needs the device: what waits for its turn, what runs, when it last ran."""

    def __init__(self) -> None:
        self.waiting: list[float] = []  # arrival times
        self.in_flight = 0
        self.last_use = -math.inf

    def demand(self, now: float) -> Demand:
        oldest = min(self.waiting, default=now)
        return Demand(len(self.waiting), now - oldest, self.in_flight, self.last_use)


class TurnRefused(Exception):
    """A request that cannot have its turn: the API answers 503 with this code and Retry-After."""

    def __init__(self, code: str, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class DeviceControl(Protocol):
    """The worker, as the scheduler commands it."""

    async def send_load(self, reason: str) -> None: ...

    async def send_release(self, scope: ReleaseScope, reason: str) -> None: ...

    async def send_limits(self, limits: Limits) -> None: ...


class Scheduler:
    def __init__(
        self,
        config: Config,
        control: DeviceControl,
        ollama: OllamaClient | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config.scheduler
        self.control = control
        self.ollama = ollama
        self.clock = clock
        self.policy = TurnPolicy(Settings.from_config(config), clock())
        self.worker: WorkerState | None = None
        self.clip_placement = Placement.NONE
        self.guard = Guard(config, self._wake_up)
        self._worker_detail = ""
        self._limits_sent: Limits | None = None
        self._ollama_view = OllamaView()
        self._ollama_seen_at = -math.inf
        self.vision = Side()
        self.door = Side()  # hailo-ollama work that came through hailo-vision's door
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()  # (created before the guard may call _wake_up)
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle --------------------------------------------------------------------------------

    def _wake_up(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="scheduler"))
        self._tasks.append(asyncio.create_task(self.guard.run(), name="scheduler-guard"))
        if self.ollama is not None:
            self._tasks.append(asyncio.create_task(self._poll_ollama(), name="scheduler-ollama"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ollama is not None:
            await self.ollama.close()

    # --- inputs -----------------------------------------------------------------------------------

    def worker_changed(self, beat: Heartbeat | None) -> None:
        """A heartbeat, or the worker's loss (None); the worker says which backend runs."""
        self.guard.worker_beat(beat)
        if beat is None:
            self.worker, self.clip_placement = None, Placement.NONE
            self._limits_sent = None  # a new worker starts with the configured limits
        else:
            uses_device = beat.backend == "hailo"
            if self.policy.settings.uses_device != uses_device:
                self.policy.settings = dataclasses.replace(self.policy.settings, uses_device=uses_device)
            self.worker, self.clip_placement = beat.state, beat.clip_placement
            self._worker_detail = beat.detail  # names the device's holders while it is busy
        # Every heartbeat is looked at: a state can come and go between two of them (a load found the
        # device busy and was released again), and the policy follows what it sees now.
        self._wake.set()

    def can_serve(self) -> bool:
        """What /health/ready answers: the models are on the device, or hailo-vision can take its turn
        (it was loaded before, or loads on demand, or leaves the device to hailo-ollama on purpose)."""
        worker = self.worker
        if worker == WorkerState.READY:
            return True
        if worker not in (WorkerState.RELEASED, WorkerState.LOADING, WorkerState.NPU_BUSY):
            return False
        policy = self.policy
        return policy.loaded_once or not policy.settings.persistent or policy.holding_off

    def admin_load(self) -> None:
        log_event(log, "admin_load")
        self.policy.admin_load()
        self._wake.set()

    def keep_alive(self, seconds: float) -> None:
        """A client's keep_alive for the VLM (see TurnPolicy.keep_alive)."""
        self.policy.keep_alive(self.clock(), seconds)
        self._wake.set()

    def admin_release(self) -> None:
        log_event(log, "admin_release")
        self.policy.admin_release(self.clock())
        self._wake.set()

    @contextlib.asynccontextmanager
    async def turn(self, work: Work) -> AsyncIterator[None]:
        """Wait for hailo-vision's turn on the device if `work` needs it, then count it in flight."""
        if not self._needs_device(work):
            yield
            return
        async with self._turn_of(self.vision, lambda: self.policy.may_dispatch(self.worker)):
            yield

    @contextlib.asynccontextmanager
    async def ollama_turn(self) -> AsyncIterator[None]:
        """Wait for hailo-ollama's turn (hailo-vision neither holds nor takes the device) for work
        forwarded through the door, then count it in flight until its answer ends. One at a time, as
        hailo-ollama serves them: the rest wait here, seen by the policy, not in hailo-ollama's queue
        where a switch could not see them."""
        async with self._turn_of(self.door, lambda: self.policy.may_forward() and not self.door.in_flight):
            yield

    @contextlib.asynccontextmanager
    async def _turn_of(self, side: Side, may_go: Callable[[], bool]) -> AsyncIterator[None]:
        arrived = self.clock()
        side.waiting.append(arrived)
        self._wake.set()
        try:
            await self._wait_for_turn(may_go, arrived + self.config.turn_timeout_s)
        finally:
            side.waiting.remove(arrived)
        side.in_flight += 1
        side.last_use = self.clock()
        try:
            yield
        finally:
            side.in_flight -= 1
            side.last_use = self.clock()
            self._wake.set()

    def ladder(self) -> Ladder:
        waiting = bool(self.vision.waiting) and not self.policy.may_dispatch(self.worker)
        on_cpu = self.policy.settings.uses_device and self.clip_placement == Placement.CPU
        return self.guard.ladder(waiting, on_cpu)

    def max_tokens(self) -> int | None:
        """The cap on answer length the current rung sets (None: no cap)."""
        return self.ladder().allowance.max_tokens

    def _refuse_by_rung(self, work: Work) -> None:
        ladder = self.ladder()
        allowance, why = ladder.allowance, "; ".join(ladder.reasons)
        if not allowance.inference:
            raise TurnRefused(
                "degraded", f"inference is paused ({ladder.rung}): {why}", allowance.retry_after_s
            )
        if work == Work.GENERATE and not allowance.generations:
            raise TurnRefused(
                "degraded", f"only CLIP is served now ({ladder.rung}): {why}", allowance.retry_after_s
            )
        on_cpu = self.clip_placement == Placement.CPU and self.policy.settings.uses_device
        if work == Work.CLIP and on_cpu and not allowance.cpu_fallback:
            message = (
                f"the CLIP CPU fallback is refused ({ladder.rung}: {why}) while the NPU is not hailo-vision's"
            )
            raise TurnRefused("degraded", message, allowance.retry_after_s)
        refusal = self.guard.load_refusal()
        if work == Work.GENERATE and refusal and not self.policy.may_dispatch(self.worker):
            raise TurnRefused("degraded", refusal, allowance.retry_after_s)

    def _needs_device(self, work: Work) -> bool:
        self._refuse_by_rung(work)
        if work == Work.GENERATE:
            return True
        if self.clip_placement != Placement.NONE:
            return False
        if self.config.clip_without_npu == "refuse" and not self.policy.may_dispatch(self.worker):
            raise TurnRefused(
                "npu_busy",
                f"CLIP runs on the NPU, which is not hailo-vision's now ({self.policy.owner_reason}); "
                "scheduler.clip_without_npu is refuse",
                self._switch_estimate_s(),
            )
        return True

    async def _wait_for_turn(self, may_go: Callable[[], bool], deadline: float) -> None:
        async with self._changed:
            while not may_go():
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise TurnRefused(
                        "npu_busy",
                        f"the NPU did not become hailo-vision's within {self.config.turn_timeout_s:g} s "
                        f"({self.policy.reason}; NPU owner: {self.policy.owner}, {self.policy.owner_reason})",
                        self._switch_estimate_s(),
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()

    # --- the loop ---------------------------------------------------------------------------------

    def observe(self) -> Observation:
        now = self.clock()
        vision = self.vision.demand(now)
        ladder = self.ladder()
        refusal = self.guard.load_refusal()
        may_load = ladder.allowance.loads and not refusal
        why = refusal or "; ".join(ladder.reasons)
        return Observation(
            now,
            self.worker,
            self._ollama_view,
            vision,
            self.door.demand(now),
            may_load=may_load,
            may_hold=ladder.allowance.generations,
            refusal=why,
            worker_detail=self._worker_detail,
        )

    async def _run(self) -> None:
        if self.ollama is not None:
            await self._read_ollama(self.ollama)  # the first decision knows what hailo-ollama holds
        while True:
            self._wake.clear()
            wants_fresh = self.policy.phase == Phase.RELEASED and self.vision.waiting
            if wants_fresh and self.ollama is not None and self.clock() - self._ollama_seen_at > 1.0:
                await self._read_ollama(self.ollama)  # take decisions on what hailo-ollama does now
            seen = self.observe()
            for action in self.policy.decide(seen):
                await self._carry_out(action)
            limits = self.guard.limits(self.ladder().allowance)
            if self.worker is not None and limits != self._limits_sent:
                await self.control.send_limits(limits)
                self._limits_sent = limits
            async with self._changed:
                self._changed.notify_all()
            due = self.policy.next_due(seen)
            timeout = None if due is None else max(0.0, due - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _carry_out(self, action: Action) -> None:
        owner = self.policy.owner
        facts: dict[str, str] = {"reason": action.reason, "owner": owner}
        if action.model:
            facts["model"] = action.model
        log_event(log, f"npu_{action.kind}", logging.INFO, **facts)
        if action.kind == ActionKind.LOAD:
            await self.control.send_load(action.reason)
        elif action.kind == ActionKind.RELEASE:
            await self.control.send_release(action.scope, action.reason)
        elif self.ollama is not None:
            self._tasks.append(asyncio.create_task(self._unload(self.ollama, action.model)))

    async def _unload(self, ollama: OllamaClient, model: str) -> None:
        result = await ollama.unload(model)
        level = logging.INFO if result.ok else logging.WARNING
        log_event(
            log, "ollama_unloaded" if result.ok else "ollama_unload_failed", level, detail=result.detail
        )
        self.policy.unload_finished(self.clock(), result.ok, result.detail)
        await self._read_ollama(ollama)
        self._wake.set()

    async def _poll_ollama(self) -> None:
        assert self.ollama is not None
        while True:
            await self._read_ollama(self.ollama)
            await asyncio.sleep(self.config.ollama_poll_s)

    async def _read_ollama(self, ollama: OllamaClient) -> None:
        view = await ollama.ps()
        now = self.clock()
        self._ollama_seen_at = now
        if view.reachable and not view.busy and ollama.catalog_due(now):  # (not while it answers)
            await ollama.read_catalog(now)
        if view != self._ollama_view:
            self._ollama_view = view
            self._wake.set()

    # --- what it shows ----------------------------------------------------------------------------

    def _switch_estimate_s(self) -> float:
        figures = self.policy.figures
        return figures.switch_seconds / figures.switches if figures.switches else DEFAULT_SWITCH_S

    def snapshot(self) -> Snapshot:
        now = self.clock()
        policy = self.policy
        release_at = policy.release_at(self.observe())
        release_in = None if release_at is None else max(0.0, release_at - now)
        return Snapshot(
            policy=policy.settings.policy,
            phase=policy.phase,
            reason=policy.reason,
            owner=policy.owner,
            owner_since_s=now - policy.owner_since,
            owner_reason=policy.owner_reason,
            waiting=len(self.vision.waiting),
            in_flight=self.vision.in_flight,
            door_waiting=len(self.door.waiting),
            door_in_flight=self.door.in_flight,
            figures=policy.figures,
            release_in_s=release_in,
            ollama_url=self.config.ollama_url,
            ollama=self._ollama_view if self.ollama is not None else None,
            ladder=self.ladder(),
            seen=self.guard.seen,
        )
