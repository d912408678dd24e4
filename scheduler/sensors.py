"""The Pi's temperatures, throttling flags and memory, read by thin adapters that degrade to unknown.

A machine without a sensor (no sysfs zone, no vcgencmd, a CPU backend without a Hailo chip) gives
None, said once in the log, and its condition counts as unknown - never as an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from npu_worker.logs import log_event

log = logging.getLogger("scheduler.sensors")
MB = 1024 * 1024
COMMAND_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Readings:
    soc_c: float | None
    throttled: int | None  # vcgencmd get_throttled's value
    service_mb: float | None  # the API's and the worker's resident memory
    available_mb: float | None  # the system's available memory


class Sensors:
    def __init__(self, soc_temp_file: str, vcgencmd: str) -> None:
        self.soc_temp_file = Path(soc_temp_file) if soc_temp_file else None
        self.vcgencmd = vcgencmd
        self._said: set[str] = set()

    def _unknown(self, sensor: str, why: str) -> None:
        if sensor not in self._said:
            self._said.add(sensor)
            log_event(log, "sensor_unknown", logging.WARNING, sensor=sensor, why=why)

    def soc_celsius(self) -> float | None:
        if self.soc_temp_file is None:
            return None
        try:
            return int(self.soc_temp_file.read_text().strip()) / 1000.0
        except (OSError, ValueError) as exc:
            self._unknown("soc_temperature", f"{self.soc_temp_file}: {exc}")
            return None

    async def throttled(self) -> int | None:
        """`vcgencmd get_throttled` -> 'throttled=0x50005' -> 0x50005."""
        if not self.vcgencmd:
            return None
        try:
            process = await asyncio.create_subprocess_exec(
                self.vcgencmd,
                "get_throttled",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                out, _ = await process.communicate()
            return int(out.decode().strip().split("=", 1)[1], 16)
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            self._unknown("throttled", f"{self.vcgencmd} get_throttled: {exc!r}")
            return None

    def memory(self, worker_pid: int | None) -> tuple[float | None, float | None]:
        """The service's resident memory (this process and the worker) and the system's available."""
        try:
            rss = psutil.Process(os.getpid()).memory_info().rss
            if worker_pid is not None:
                rss += psutil.Process(worker_pid).memory_info().rss
            return rss / MB, psutil.virtual_memory().available / MB
        except (psutil.Error, OSError) as exc:
            self._unknown("memory", repr(exc))
            return None, None

    async def read(self, worker_pid: int | None) -> Readings:
        service, available = self.memory(worker_pid)
        return Readings(self.soc_celsius(), await self.throttled(), service, available)
