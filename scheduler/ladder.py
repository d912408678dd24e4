"""The degradation ladder: temperature and memory levels, and what each rung allows. Pure policy.

A Pi in a hot enclosure, or beside a memory-hungry hailo-ollama, must slow down predictably and say
why, never fall over or be killed by the kernel. Each condition has levels with hysteresis (a level
is left only a margin below where it was entered, so it never flaps); the rung is the most severe
condition, and the allowance combines every active one. From nothing lost to everything paused:

- normal;
- queueing: requests wait for hailo-vision's turn on the NPU (only latency is lost);
- cpu_fallback: CLIP runs on its CPU encoder while the NPU is hailo-ollama's (slower CLIP);
- capped (temperature warning): answers capped at thermal.warning_max_tokens, CLIP batches of at
  most thermal.warning_clip_batch images, thermal.warning_pause_ms between two generations: the NPU
  and the CPU do less per second, answers stay correct;
- shedding (memory pressure): the text cache shrinks to a quarter, the CLIP CPU fallback (an extra
  encoder in memory and on the CPU) and loads that would pass the budget are refused;
- clip_only (memory critical): the VLM is given back and generations are refused with 503; CLIP,
  small and often all a camera pipeline needs, is still served;
- paused (temperature critical): inference is refused with 503 and Retry-After until it cools.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from npu_worker.states import Rung

PRESSURE_SHARE = 0.9  # of memory_limit_mb
MEMORY_FLOOR_MARGIN = 1.5  # x min_available_mb: below it, pressure
MEMORY_HYSTERESIS = 0.05  # a memory level is left 5 % (of the limit, or the floor margin) back
CACHE_SHARE_UNDER_PRESSURE = 0.25
# vcgencmd get_throttled bits: now (0-3); the same since boot are 16-19.
THROTTLE_BITS = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
PAUSED_RETRY_S = 30.0


class ThermalLevel(enum.StrEnum):
    """Declared from the least to the most pressing."""

    UNKNOWN = "unknown"  # no sensor here
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"


class MemoryLevel(enum.StrEnum):
    UNKNOWN = "unknown"
    NORMAL = "normal"
    PRESSURE = "pressure"
    CRITICAL = "critical"


def temperature_level(
    previous: ThermalLevel, celsius: float | None, warning: float, critical: float, band: float
) -> ThermalLevel:
    """The level for `celsius`, held until it is `band` below the level's threshold (hysteresis)."""
    if celsius is None:
        return ThermalLevel.UNKNOWN
    if celsius >= critical or (previous == ThermalLevel.CRITICAL and celsius > critical - band):
        return ThermalLevel.CRITICAL
    if celsius >= warning or (
        previous in (ThermalLevel.WARNING, ThermalLevel.CRITICAL) and celsius > warning - band
    ):
        return ThermalLevel.WARNING
    return ThermalLevel.NORMAL


def memory_level(
    previous: MemoryLevel,
    service_mb: float | None,
    available_mb: float | None,
    limit_mb: float,
    floor_mb: float,
) -> MemoryLevel:
    """Critical past the budget or under the floor; pressure past 90 % of it or under 1.5 x the
    floor; each left only 5 % back."""
    if service_mb is None or available_mb is None:
        return MemoryLevel.UNKNOWN
    back = MEMORY_HYSTERESIS if previous == MemoryLevel.CRITICAL else 0.0
    if service_mb > limit_mb * (1 - back) or available_mb < floor_mb * (1 + back):
        return MemoryLevel.CRITICAL
    back = MEMORY_HYSTERESIS if previous in (MemoryLevel.PRESSURE, MemoryLevel.CRITICAL) else 0.0
    if service_mb > limit_mb * (PRESSURE_SHARE - back) or available_mb < floor_mb * (
        MEMORY_FLOOR_MARGIN + back
    ):
        return MemoryLevel.PRESSURE
    return MemoryLevel.NORMAL


def throttling(value: int | None) -> tuple[list[str], bool]:
    """vcgencmd's get_throttled value as words (what holds now), and whether the ARM is held back now."""
    if value is None:
        return [], False
    now = [name for bit, name in THROTTLE_BITS.items() if value & (1 << bit)]
    return now, bool(value & 0b1110)


@dataclass(frozen=True)
class Conditions:
    thermal: ThermalLevel
    thermal_reasons: tuple[str, ...]
    memory: MemoryLevel
    memory_reasons: tuple[str, ...]
    waiting_for_turn: bool  # requests wait for hailo-vision's turn on the NPU
    clip_on_cpu: bool  # CLIP is served by the CPU fallback because the NPU is not hailo-vision's


@dataclass(frozen=True)
class Allowance:
    """What the service may do on the current rung."""

    inference: bool = True  # False: paused
    generations: bool = True  # False: the VLM given back, generations refused
    loads: bool = True  # taking the device for the VLM
    cpu_fallback: bool = True  # CLIP on the CPU encoder
    max_tokens: int | None = None
    max_batch: int | None = None  # None: resources.max_batch_size
    generation_pause_s: float = 0.0
    cache_share: float = 1.0
    retry_after_s: float = PAUSED_RETRY_S


@dataclass(frozen=True)
class Ladder:
    rung: Rung
    reasons: tuple[str, ...]
    allowance: Allowance


def climb(
    seen: Conditions, warning_max_tokens: int, warning_clip_batch: int, warning_pause_s: float
) -> Ladder:
    rungs = [Rung.NORMAL]
    reasons: list[str] = []
    allowance = Allowance()
    if seen.waiting_for_turn:
        rungs.append(Rung.QUEUEING)
    if seen.clip_on_cpu:
        rungs.append(Rung.CPU_FALLBACK)
    if seen.thermal == ThermalLevel.WARNING:
        rungs.append(Rung.CAPPED)
        reasons += seen.thermal_reasons
        allowance = Allowance(
            max_tokens=warning_max_tokens, max_batch=warning_clip_batch, generation_pause_s=warning_pause_s
        )
    if seen.memory in (MemoryLevel.PRESSURE, MemoryLevel.CRITICAL):
        critical = seen.memory == MemoryLevel.CRITICAL
        rungs.append(Rung.CLIP_ONLY if critical else Rung.SHEDDING)
        reasons += seen.memory_reasons
        allowance = dataclasses.replace(
            allowance,
            loads=False,
            cpu_fallback=False,
            generations=not critical,
            cache_share=CACHE_SHARE_UNDER_PRESSURE,
        )
    if seen.thermal == ThermalLevel.CRITICAL:
        rungs.append(Rung.PAUSED)
        reasons += seen.thermal_reasons
        allowance = dataclasses.replace(allowance, inference=False, generations=False, loads=False)
    rung = max(rungs, key=lambda r: r.severity)
    return Ladder(rung, tuple(dict.fromkeys(reasons)), allowance)
