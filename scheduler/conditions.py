"""Readings -> conditions: the temperature and memory levels (kept for their hysteresis) and why.

Pure apart from the state it keeps between two readings; the sensors are scheduler/sensors.py and the
ladder is scheduler/ladder.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from npu_worker.config import ResourcesConfig, ThermalConfig
from scheduler.ladder import MemoryLevel, ThermalLevel, memory_level, temperature_level, throttling
from scheduler.sensors import Readings


@dataclass(frozen=True)
class Seen:
    thermal: ThermalLevel
    thermal_reasons: tuple[str, ...]
    memory: MemoryLevel
    memory_reasons: tuple[str, ...]
    load_refusal: str  # why a VLM load would break the memory budget now ("" = it fits)
    soc_c: float | None
    hailo_c: float | None
    throttled: tuple[str, ...] | None  # what vcgencmd says holds now (None: not read)
    service_mb: float | None
    available_mb: float | None

    @property
    def levels(self) -> tuple[ThermalLevel, MemoryLevel, str]:
        """What the scheduler decides by; the readings themselves are only shown."""
        return self.thermal, self.memory, self.load_refusal


class ConditionTracker:
    def __init__(self, thermal: ThermalConfig, resources: ResourcesConfig) -> None:
        self.thermal = thermal
        self.resources = resources
        self._soc = ThermalLevel.UNKNOWN
        self._hailo = ThermalLevel.UNKNOWN
        self._memory = MemoryLevel.UNKNOWN

    def update(self, readings: Readings, hailo_c: float | None, load_footprint_mb: float | None) -> Seen:
        t, r = self.thermal, self.resources
        band = t.hysteresis_c
        self._soc = temperature_level(self._soc, readings.soc_c, t.soc_warning_c, t.soc_critical_c, band)
        self._hailo = temperature_level(self._hailo, hailo_c, t.hailo_warning_c, t.hailo_critical_c, band)
        held_back, capped = throttling(readings.throttled)
        thermal_reasons = []
        if self._soc in (ThermalLevel.WARNING, ThermalLevel.CRITICAL):
            thermal_reasons.append(f"SoC {readings.soc_c:.1f} C ({self._soc})")
        if self._hailo in (ThermalLevel.WARNING, ThermalLevel.CRITICAL):
            thermal_reasons.append(f"Hailo chip {hailo_c:.1f} C ({self._hailo})")
        if held_back:
            thermal_reasons.append("vcgencmd: " + ", ".join(held_back))
        known = [level for level in (self._soc, self._hailo) if level != ThermalLevel.UNKNOWN]
        thermal = max(known, key=list(ThermalLevel).index, default=ThermalLevel.UNKNOWN)
        if capped and thermal in (ThermalLevel.NORMAL, ThermalLevel.UNKNOWN):
            thermal = ThermalLevel.WARNING  # the firmware already holds the ARM back: do less
        self._memory = memory_level(
            self._memory, readings.service_mb, readings.available_mb, r.memory_limit_mb, r.min_available_mb
        )
        memory_reasons = []
        if self._memory in (MemoryLevel.PRESSURE, MemoryLevel.CRITICAL):
            memory_reasons.append(
                f"memory {self._memory}: service {readings.service_mb:.0f} of {r.memory_limit_mb} MiB, "
                f"{readings.available_mb:.0f} MiB available (floor {r.min_available_mb})"
            )
        return Seen(
            thermal=thermal,
            thermal_reasons=tuple(thermal_reasons),
            memory=self._memory,
            memory_reasons=tuple(memory_reasons),
            load_refusal=self._load_refusal(readings, load_footprint_mb),
            soc_c=readings.soc_c,
            hailo_c=hailo_c,
            throttled=None if readings.throttled is None else tuple(held_back),
            service_mb=readings.service_mb,
            available_mb=readings.available_mb,
        )

    def _load_refusal(self, readings: Readings, footprint_mb: float | None) -> str:
        """Why loading the VLM (as big as it was measured at its last load) would break the budget."""
        if footprint_mb is None or readings.service_mb is None or readings.available_mb is None:
            return ""
        r = self.resources
        if readings.service_mb + footprint_mb > r.memory_limit_mb:  # the footprint as last measured
            return (
                f"loading the VLM (~{footprint_mb:.0f} MiB) would pass memory_limit_mb ({r.memory_limit_mb})"
            )
        if readings.available_mb - footprint_mb < r.min_available_mb:
            return f"loading the VLM (~{footprint_mb:.0f} MiB) would leave less than min_available_mb free"
        return ""
