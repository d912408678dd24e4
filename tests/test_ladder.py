"""The degradation ladder, pure: levels with hysteresis, the rung, and what each rung allows."""

from __future__ import annotations

import pytest

from npu_worker.config import ResourcesConfig, ThermalConfig
from npu_worker.states import Rung
from scheduler.conditions import ConditionTracker
from scheduler.ladder import (
    Conditions,
    MemoryLevel,
    ThermalLevel,
    climb,
    memory_level,
    temperature_level,
    throttling,
)
from scheduler.sensors import Readings

W, C, BAND = 75.0, 82.0, 5.0


def walk(temperatures: list[float | None]) -> list[ThermalLevel]:
    level, seen = ThermalLevel.UNKNOWN, []
    for celsius in temperatures:
        level = temperature_level(level, celsius, W, C, BAND)
        seen.append(level)
    return seen


def test_temperature_levels_rise_at_their_thresholds_and_fall_only_past_the_band() -> None:
    n, w, c = ThermalLevel.NORMAL, ThermalLevel.WARNING, ThermalLevel.CRITICAL
    assert walk([60, 74.9, 75, 72, 70.1, 70, 69.9]) == [n, n, w, w, w, n, n]
    assert walk([80, 82, 78, 77.1, 77, 71, 70]) == [w, c, c, c, w, w, n]


def test_a_temperature_wobbling_inside_the_band_never_flaps() -> None:
    wobble = [75.2, 74.1, 75.0, 73.3, 74.9, 71.0, 74.8] * 10
    assert set(walk(wobble)) == {ThermalLevel.WARNING}


def test_a_missing_sensor_is_unknown() -> None:
    assert walk([None]) == [ThermalLevel.UNKNOWN]


@pytest.mark.parametrize(
    ("previous", "service", "available", "expected"),
    [
        (MemoryLevel.NORMAL, 1000, 4000, MemoryLevel.NORMAL),
        (MemoryLevel.NORMAL, 3700, 4000, MemoryLevel.PRESSURE),  # past 90 % of 4096
        (MemoryLevel.NORMAL, 1000, 700, MemoryLevel.PRESSURE),  # under 1.5 x the 512 floor
        (MemoryLevel.NORMAL, 4100, 4000, MemoryLevel.CRITICAL),  # past the budget
        (MemoryLevel.NORMAL, 1000, 500, MemoryLevel.CRITICAL),  # under the floor
        (MemoryLevel.CRITICAL, 4000, 4000, MemoryLevel.CRITICAL),  # not 5 % back yet
        (MemoryLevel.CRITICAL, 3800, 4000, MemoryLevel.PRESSURE),
        (MemoryLevel.PRESSURE, 3600, 4000, MemoryLevel.PRESSURE),  # 88 %: not 5 % back
        (MemoryLevel.PRESSURE, 3400, 4000, MemoryLevel.NORMAL),
        (MemoryLevel.NORMAL, None, 4000, MemoryLevel.UNKNOWN),
    ],
)
def test_memory_levels(
    previous: MemoryLevel, service: float | None, available: float, expected: MemoryLevel
) -> None:
    assert memory_level(previous, service, available, 4096, 512) == expected


def test_vcgencmd_bits_say_what_holds_now() -> None:
    assert throttling(0x50005) == (["under-voltage", "throttled"], True)
    assert throttling(0x50000) == ([], False)  # only "since boot": nothing now
    assert throttling(0x1) == (["under-voltage"], False)  # power, not heat: said, not acted on
    assert throttling(None) == ([], False)


def conditions(**changes: object) -> Conditions:
    base = {
        "thermal": ThermalLevel.NORMAL,
        "thermal_reasons": (),
        "memory": MemoryLevel.NORMAL,
        "memory_reasons": (),
        "waiting_for_turn": False,
        "clip_on_cpu": False,
    }
    return Conditions(**{**base, **changes})  # type: ignore[arg-type]


def ladder(**changes: object) -> tuple[Rung, object]:
    result = climb(conditions(**changes), 128, 2, 0.5)
    return result.rung, result.allowance


def test_each_condition_has_its_rung_and_the_most_severe_wins() -> None:
    assert ladder()[0] == Rung.NORMAL
    assert ladder(waiting_for_turn=True)[0] == Rung.QUEUEING
    assert ladder(waiting_for_turn=True, clip_on_cpu=True)[0] == Rung.CPU_FALLBACK
    assert ladder(thermal=ThermalLevel.WARNING, clip_on_cpu=True)[0] == Rung.CAPPED
    assert ladder(memory=MemoryLevel.PRESSURE, thermal=ThermalLevel.WARNING)[0] == Rung.SHEDDING
    assert ladder(memory=MemoryLevel.CRITICAL)[0] == Rung.CLIP_ONLY
    assert ladder(thermal=ThermalLevel.CRITICAL, memory=MemoryLevel.CRITICAL)[0] == Rung.PAUSED


def test_what_each_rung_allows() -> None:
    capped = climb(conditions(thermal=ThermalLevel.WARNING, thermal_reasons=("SoC 77.0 C",)), 128, 2, 0.5)
    assert capped.reasons == ("SoC 77.0 C",)
    a = capped.allowance
    assert (a.max_tokens, a.max_batch, a.generation_pause_s, a.inference, a.generations) == (
        128,
        2,
        0.5,
        True,
        True,
    )
    shedding = climb(
        conditions(memory=MemoryLevel.PRESSURE, thermal=ThermalLevel.WARNING), 128, 2, 0.5
    ).allowance
    assert not shedding.loads and not shedding.cpu_fallback and shedding.generations
    assert shedding.cache_share == 0.25 and shedding.max_tokens == 128  # both conditions apply
    clip_only = climb(conditions(memory=MemoryLevel.CRITICAL), 128, 2, 0.5).allowance
    assert not clip_only.generations and clip_only.inference
    paused = climb(conditions(thermal=ThermalLevel.CRITICAL), 128, 2, 0.5).allowance
    assert not paused.inference and paused.retry_after_s >= 1


def tracker(**resources: int) -> ConditionTracker:
    return ConditionTracker(ThermalConfig(), ResourcesConfig(**resources))  # type: ignore[arg-type]


def test_conditions_combine_the_soc_the_hailo_chip_and_the_firmware_flags() -> None:
    conditions_now = tracker().update(Readings(60.0, 0x0, 500, 4000), hailo_c=90.0, load_footprint_mb=None)
    assert conditions_now.thermal == ThermalLevel.WARNING  # the chip, past hailo_warning_c 85
    assert conditions_now.thermal_reasons == ("Hailo chip 90.0 C (warning)",)
    throttled = tracker().update(Readings(60.0, 0x4, 500, 4000), hailo_c=None, load_footprint_mb=None)
    assert throttled.thermal == ThermalLevel.WARNING and throttled.throttled == ("throttled",)
    unknown = tracker().update(Readings(None, None, 500, 4000), hailo_c=None, load_footprint_mb=None)
    assert unknown.thermal == ThermalLevel.UNKNOWN and unknown.throttled is None


def test_a_load_that_would_break_the_budget_is_refused_with_its_reason() -> None:
    seen = tracker(memory_limit_mb=4096).update(
        Readings(None, None, 3000, 8000), None, load_footprint_mb=1500
    )
    assert "would pass memory_limit_mb (4096)" in seen.load_refusal
    floor = tracker(min_available_mb=512).update(
        Readings(None, None, 1000, 1800), None, load_footprint_mb=1500
    )
    assert "min_available_mb" in floor.load_refusal
    fits = tracker().update(Readings(None, None, 1000, 8000), None, load_footprint_mb=1500)
    assert fits.load_refusal == ""
