"""Keeps the Pi within its memory and temperature: reads the sensors, climbs the ladder, tells the worker.

Runs in the API process beside the turn scheduler (scheduler/driver.py), which asks it what the
current rung allows before any work goes to the worker, and whether a VLM load still fits the
budget. What it measures itself: how much a VLM load added to the worker's memory, so that the next
load can be refused before it breaks the budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psutil

from npu_worker.config import Config
from npu_worker.logs import log_event
from npu_worker.protocol import Heartbeat, Limits
from npu_worker.states import Rung, WorkerState
from scheduler.conditions import ConditionTracker, Seen
from scheduler.ladder import Allowance, Conditions, Ladder, MemoryLevel, ThermalLevel, climb
from scheduler.sensors import MB, Sensors

log = logging.getLogger("scheduler.guard")


class Guard:
    def __init__(self, config: Config, on_change: Callable[[], None]) -> None:
        self.config = config
        self.on_change = on_change
        self.sensors = Sensors(config.thermal.soc_temp_file, config.thermal.vcgencmd)
        self.tracker = ConditionTracker(config.thermal, config.resources)
        self.seen: Seen | None = None
        self.load_footprint_mb: float | None = None
        self._worker_pid: int | None = None
        self._hailo_c: float | None = None
        self._released_rss_mb: float | None = None
        self._worker_state: WorkerState | None = None
        self._rung = Rung.NORMAL

    def worker_beat(self, beat: Heartbeat | None) -> None:
        """Follow the worker: its pid, its chip temperature, and what a load adds to its memory."""
        if beat is None:  # no worker: nothing of the last one's chip or memory holds
            self._worker_pid = self._worker_state = self._hailo_c = self._released_rss_mb = None
            return
        previous, self._worker_state = self._worker_state, beat.state
        self._worker_pid, self._hailo_c = beat.pid, beat.chip_temperature_c
        if beat.state == WorkerState.RELEASED:
            self._released_rss_mb = self._worker_rss_mb()
        elif beat.state == WorkerState.READY and previous != WorkerState.READY and self._released_rss_mb:
            loaded = self._worker_rss_mb()
            if loaded is not None:
                self.load_footprint_mb = max(0.0, loaded - self._released_rss_mb)

    def _worker_rss_mb(self) -> float | None:
        if self._worker_pid is None:
            return None
        try:
            return float(psutil.Process(self._worker_pid).memory_info().rss) / MB
        except psutil.Error:
            return None

    async def run(self) -> None:
        while True:
            readings = await self.sensors.read(self._worker_pid)
            seen = self.tracker.update(readings, self._hailo_c, self.load_footprint_mb)
            previous, self.seen = self.seen, seen
            if previous is None or seen.levels != previous.levels:
                self.on_change()  # (a new reading at the same levels changes no decision)
            await asyncio.sleep(self.config.thermal.poll_s)

    def ladder(self, waiting_for_turn: bool, clip_on_cpu: bool) -> Ladder:
        seen = self.seen
        t = self.config.thermal
        conditions = Conditions(
            thermal=seen.thermal if seen else ThermalLevel.UNKNOWN,
            thermal_reasons=seen.thermal_reasons if seen else (),
            memory=seen.memory if seen else MemoryLevel.UNKNOWN,
            memory_reasons=seen.memory_reasons if seen else (),
            waiting_for_turn=waiting_for_turn,
            clip_on_cpu=clip_on_cpu,
        )
        ladder = climb(conditions, t.warning_max_tokens, t.warning_clip_batch, t.warning_pause_ms / 1000.0)
        if ladder.rung != self._rung:
            level = logging.WARNING if ladder.rung.severity > self._rung.severity else logging.INFO
            log_event(
                log,
                "rung_changed",
                level,
                rung=ladder.rung,
                was=self._rung,
                reasons="; ".join(ladder.reasons),
            )
            self._rung = ladder.rung
        return ladder

    def load_refusal(self) -> str:
        return self.seen.load_refusal if self.seen else ""

    def limits(self, allowance: Allowance) -> Limits:
        """What the worker is told: CLIP batch size, pause between generations, text cache share."""
        configured = self.config.resources.max_batch_size
        batch = min(configured, allowance.max_batch) if allowance.max_batch else configured
        return Limits(batch, allowance.generation_pause_s, allowance.cache_share)
