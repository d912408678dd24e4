"""The turn policy, pure: what it decides for each situation, with time passed in by hand."""

from __future__ import annotations

import dataclasses

import pytest
from policy_world import ABSENT, GENERATING, HOLDING, IDLE, SETTINGS, World

from npu_worker.backend import ReleaseScope
from npu_worker.states import NpuOwner, WorkerState
from scheduler.turn_types import Action, ActionKind, Demand, OllamaView, Phase, Policy


def test_persistent_without_hailo_ollama_loads_at_start_and_never_releases() -> None:
    world = World(ollama=ABSENT)
    assert world.decide() == [Action(ActionKind.LOAD, "model.persistent: kept warm")]
    world.worker = WorkerState.READY
    world.wait(10_000)
    assert world.decide() == []
    assert world.policy.owner == NpuOwner.HAILO_VISION


def test_persistent_with_hailo_ollama_present_is_released_after_idle_and_not_reloaded() -> None:
    world = World()
    world.load()
    world.wait(119)
    assert world.decide() == []  # idle 119 s < vlm_idle_release_s
    world.wait(1)
    (release,) = world.decide()
    assert release.kind == ActionKind.RELEASE and release.scope == ReleaseScope.DEVICE
    assert "no vision work for 120 s" in release.reason
    world.worker = WorkerState.RELEASED
    assert world.decide() == []
    assert world.policy.phase == Phase.RELEASED and world.policy.holding_off
    assert world.policy.figures.switches == 2  # into hailo-vision at the load, out at the release


def test_idle_is_counted_from_the_last_use_and_never_while_in_flight() -> None:
    world = World()
    world.load()
    world.vision = Demand(in_flight=1, last_use=world.now)
    world.wait(500)
    assert world.decide() == []
    world.vision = Demand(last_use=world.now)
    world.wait(119)
    assert world.decide() == []
    world.wait(1)
    assert world.kinds() == [ActionKind.RELEASE]


def test_with_hailo_ollama_in_the_shared_group_only_the_vlm_is_released() -> None:
    world = World(dataclasses.replace(SETTINGS, ollama_shares_device=True))
    world.load()
    world.wait(120)
    (release,) = world.decide()
    assert release.scope == ReleaseScope.VLM


def test_share_unloads_an_idle_hailo_ollama_that_has_had_its_turn_then_loads() -> None:
    world = World(ollama=HOLDING)
    assert world.decide() == []  # persistent, but hailo-ollama holds the device: leave it
    assert world.policy.owner == NpuOwner.HAILO_OLLAMA
    world.wait(31)
    world.request()
    (unload,) = world.decide()
    assert unload == Action(ActionKind.UNLOAD_OLLAMA, unload.reason, model="qwen2.5:1.5b")
    assert world.policy.phase == Phase.UNLOADING_OLLAMA
    assert world.decide() == []  # nothing more until the unload has returned
    world.wait(2)
    world.policy.unload_finished(world.now, True, "qwen2.5:1.5b (unload)")
    world.ollama = IDLE
    world.load()
    assert world.policy.figures.last_switch_s == 2
    assert world.policy.may_dispatch(world.worker)


def test_share_lets_hailo_ollama_keep_its_minimum_residency_unless_vision_starves() -> None:
    world = World(dataclasses.replace(SETTINGS, max_wait_s=20), ollama=IDLE)
    world.wait(5)
    world.ollama = HOLDING  # hailo-ollama just took the device
    world.decide()
    world.wait(10)
    world.request(waited_s=10)
    assert world.decide() == []
    assert world.policy.next_due(world.seen()) == world.now + 10  # max_wait_s 20 comes first
    world.wait(10)
    world.request(waited_s=20)
    (unload,) = world.decide()
    assert "max_wait_s" in unload.reason


def test_vision_first_takes_the_device_at_once() -> None:
    world = World(dataclasses.replace(SETTINGS, policy=Policy.VISION_FIRST), ollama=HOLDING)
    world.decide()
    world.request()
    assert world.kinds() == [ActionKind.UNLOAD_OLLAMA]


def test_ollama_first_waits_for_hailo_ollama_to_unload_or_for_max_wait_then_releases_early() -> None:
    world = World(dataclasses.replace(SETTINGS, policy=Policy.OLLAMA_FIRST), ollama=HOLDING)
    world.decide()
    world.wait(100)
    world.request(waited_s=59)
    assert world.decide() == []
    world.ollama = IDLE  # its keep_alive expired
    world.load()
    world.serve()
    world.wait(30)  # ollama-first gives the device back after min_residency_s of idleness
    assert world.kinds() == [ActionKind.RELEASE]


def test_ollama_first_starving_vision_takes_the_device() -> None:
    world = World(dataclasses.replace(SETTINGS, policy=Policy.OLLAMA_FIRST), ollama=HOLDING)
    world.decide()
    world.request(waited_s=60)
    assert world.kinds() == [ActionKind.UNLOAD_OLLAMA]


def test_exclusive_takes_the_device_even_from_hailo_ollama_and_never_releases() -> None:
    world = World(dataclasses.replace(SETTINGS, policy=Policy.EXCLUSIVE, persistent=False), ollama=HOLDING)
    assert world.kinds() == [ActionKind.UNLOAD_OLLAMA]
    world.policy.unload_finished(world.now, True, "unloaded")
    world.ollama = IDLE
    world.load()
    world.wait(100_000)
    assert world.decide() == []


def test_a_running_hailo_ollama_answer_is_never_cut_off_the_unload_waits_for_it() -> None:
    world = World(dataclasses.replace(SETTINGS, policy=Policy.VISION_FIRST), ollama=HOLDING)
    world.decide()
    world.ollama = GENERATING  # /api/ps does not answer: its model is generating
    world.request()
    (unload,) = world.decide()
    assert unload.model == "qwen2.5:1.5b"  # the model last seen loaded; the unload queues behind it


def test_a_busy_device_while_loading_unloads_hailo_ollama_once_it_is_seen_holding_it() -> None:
    world = World(ollama=IDLE)
    world.request()
    assert world.kinds() == [ActionKind.LOAD]
    world.worker = WorkerState.NPU_BUSY
    assert world.decide() == []  # hailo-ollama shows nothing: someone else holds it, keep retrying
    assert world.policy.owner == NpuOwner.UNKNOWN
    world.ollama = HOLDING
    assert world.kinds() == [ActionKind.UNLOAD_OLLAMA]


def test_a_load_nobody_needs_any_more_is_stopped() -> None:
    world = World(dataclasses.replace(SETTINGS, persistent=False), ollama=ABSENT)
    world.request()
    assert world.kinds() == [ActionKind.LOAD]
    world.worker = WorkerState.NPU_BUSY
    world.vision = Demand()  # the request gave up (turn_timeout_s)
    assert world.kinds() == [ActionKind.RELEASE]


def test_work_arriving_during_a_release_takes_the_device_back_at_once() -> None:
    world = World()
    world.load()
    world.wait(120)
    assert world.kinds() == [ActionKind.RELEASE]
    world.request()
    assert world.kinds() == [ActionKind.LOAD]
    world.worker = WorkerState.READY  # the worker never got to release
    world.decide()
    assert world.policy.phase == Phase.HOLDING


def test_admin_release_gives_the_device_back_within_residency_and_keeps_off_it() -> None:
    world = World()
    world.load()
    world.policy.admin_release(world.now)
    assert world.kinds() == [ActionKind.RELEASE]
    world.worker = WorkerState.RELEASED
    world.request()
    assert world.decide() == []  # kept off for min_residency_s
    world.wait(30)
    assert world.kinds() == [ActionKind.LOAD]


def test_admin_load_takes_the_device_from_hailo_ollama() -> None:
    world = World(dataclasses.replace(SETTINGS, persistent=False), ollama=HOLDING)
    assert world.decide() == []
    world.policy.admin_load()
    assert world.kinds() == [ActionKind.UNLOAD_OLLAMA]


def test_a_lost_worker_resets_the_phase_and_asks_for_nothing() -> None:
    world = World()
    world.load()
    world.worker = None
    assert world.decide() == []
    assert world.policy.phase == Phase.RELEASED and not world.policy.may_dispatch(world.worker)
    world.worker = WorkerState.RELEASED
    assert world.kinds() == [ActionKind.LOAD]  # persistent: loaded again in the new worker


@pytest.mark.parametrize("ollama", [HOLDING, GENERATING])
def test_on_the_cpu_backend_hailo_ollama_is_never_asked_to_unload(ollama: OllamaView) -> None:
    world = World(dataclasses.replace(SETTINGS, uses_device=False, persistent=False), ollama=ollama)
    world.request()
    assert world.kinds() == [ActionKind.LOAD]


def test_a_non_persistent_cpu_model_is_released_when_idle() -> None:
    world = World(dataclasses.replace(SETTINGS, uses_device=False, persistent=False), ollama=ABSENT)
    world.request()
    world.load()
    world.serve()
    assert world.policy.release_at(world.seen()) == world.now + 120
    world.wait(120)
    (release,) = world.decide()
    assert release.scope == ReleaseScope.DEVICE


def test_the_owner_says_who_since_when_and_why() -> None:
    world = World(ollama=HOLDING)
    world.decide()
    assert (world.policy.owner, world.policy.owner_reason) == (NpuOwner.HAILO_OLLAMA, "qwen2.5:1.5b loaded")
    world.wait(5)
    world.ollama = GENERATING
    world.decide()
    assert world.policy.owner_since == 0 and world.policy.owner_reason == "qwen2.5:1.5b generating"
    world.ollama = IDLE
    world.wait(5)
    world.decide()
    assert world.policy.owner == NpuOwner.NOBODY and world.policy.owner_since == 10
    world.worker = WorkerState.NPU_BUSY  # another process, not hailo-ollama: the worker names it
    world.policy.decide(dataclasses.replace(world.seen(), worker_detail="held by pid 812 (llm-server)"))
    assert (world.policy.owner, world.policy.owner_reason) == (
        NpuOwner.UNKNOWN,
        "held by pid 812 (llm-server)",
    )
