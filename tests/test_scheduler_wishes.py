"""The turn policy and what others want of the device: hailo-ollama work waiting at the door, the
degradation ladder's word, and clients' keep_alive (pure, time passed in by hand)."""

from __future__ import annotations

import dataclasses

import pytest
from policy_world import ABSENT, HOLDING, IDLE, SETTINGS, World

from npu_worker.backend import ReleaseScope
from npu_worker.states import WorkerState
from scheduler.turn_types import ActionKind, Demand, Policy


def test_hailo_ollama_work_at_the_door_gets_the_device_once_vision_is_done_and_resided() -> None:
    world = World(dataclasses.replace(SETTINGS, persistent=False), ollama=IDLE)
    world.request()
    world.load()
    world.vision = Demand(in_flight=1, last_use=world.now)
    world.wait(40)
    seen = dataclasses.replace(world.seen(), ollama_work=Demand(waiting=1, oldest_wait_s=10))
    assert world.policy.decide(seen) == []  # vision work still running
    world.vision = Demand(last_use=world.now)
    (release,) = world.policy.decide(dataclasses.replace(world.seen(), ollama_work=Demand(1, 10)))
    assert release.reason == "hailo-ollama work waiting, vision work done"
    world.worker = WorkerState.RELEASED
    world.decide()
    assert world.policy.may_forward()


def test_starving_hailo_ollama_work_takes_the_next_turn_even_with_vision_work_queued() -> None:
    world = World(dataclasses.replace(SETTINGS, persistent=False), ollama=IDLE)
    world.request()
    world.load()
    world.vision = Demand(waiting=3, oldest_wait_s=5, in_flight=1, last_use=world.now)
    starving = Demand(waiting=1, oldest_wait_s=60)
    assert world.policy.decide(dataclasses.replace(world.seen(), ollama_work=starving)) == []
    world.vision = Demand(waiting=3, oldest_wait_s=5, last_use=world.now)  # the running one ended
    (release,) = world.policy.decide(dataclasses.replace(world.seen(), ollama_work=starving))
    assert "max_wait_s" in release.reason
    assert not world.policy.may_dispatch(WorkerState.READY)  # queued vision work waits its next turn


def test_vision_never_takes_the_device_while_a_door_request_is_at_hailo_ollama() -> None:
    world = World(dataclasses.replace(SETTINGS, persistent=False), ollama=HOLDING)
    world.decide()
    assert world.policy.may_forward()
    world.request(waited_s=600)  # starving, yet hailo-ollama is answering a forwarded request
    answering = dataclasses.replace(world.seen(), ollama_work=Demand(in_flight=1, last_use=world.now))
    assert world.policy.decide(answering) == []
    assert world.policy.may_forward()
    assert [a.kind for a in world.decide()] == [ActionKind.UNLOAD_OLLAMA]  # its answer ended
    assert not world.policy.may_forward()  # the device is being taken: the next door request waits


def test_on_the_cpu_backend_door_requests_go_to_hailo_ollama_while_the_vlm_is_loaded() -> None:
    world = World(dataclasses.replace(SETTINGS, uses_device=False), ollama=HOLDING)
    world.load()
    assert world.policy.may_forward() and world.policy.may_dispatch(WorkerState.READY)


@pytest.mark.parametrize(
    ("policy", "vision_takes"),
    [(Policy.SHARE, False), (Policy.VISION_FIRST, True), (Policy.OLLAMA_FIRST, False)],
)
def test_who_goes_first_when_both_sides_wait_for_a_free_device(policy: Policy, vision_takes: bool) -> None:
    world = World(dataclasses.replace(SETTINGS, policy=policy, persistent=False), ollama=IDLE)
    world.decide()
    world.request(waited_s=2)
    seen = dataclasses.replace(world.seen(), ollama_work=Demand(waiting=1, oldest_wait_s=5))
    actions = world.policy.decide(seen)
    assert bool(actions) == vision_takes
    assert world.policy.may_forward() == (not vision_takes)


def test_with_hailo_ollama_demand_visible_a_persistent_vlm_stays_until_it_is_wanted_and_comes_back() -> None:
    world = World(dataclasses.replace(SETTINGS, ollama_demand_visible=True))
    world.load()
    world.wait(10_000)
    assert world.decide() == []  # idle, but nobody else wants the device: no release
    assert world.policy.release_at(world.seen()) is None
    door = Demand(waiting=1, oldest_wait_s=1)
    (release,) = world.policy.decide(dataclasses.replace(world.seen(), ollama_work=door))
    assert release.kind == ActionKind.RELEASE
    world.worker, world.ollama = WorkerState.RELEASED, HOLDING
    answered = world.now + 20
    world.wait(20)
    seen = dataclasses.replace(world.seen(), ollama_work=Demand(last_use=answered))
    assert world.policy.decide(seen) == []  # hailo-ollama just answered: its turn goes on
    assert world.policy.next_due(seen) == answered + 120
    world.wait(120)
    seen = dataclasses.replace(world.seen(), ollama_work=Demand(last_use=answered))
    assert [a.kind for a in world.policy.decide(seen)] == [ActionKind.UNLOAD_OLLAMA]  # kept warm again


def test_memory_critical_gives_the_vlm_back_after_its_running_work_and_keeps_it_off() -> None:
    world = World(ollama=ABSENT)
    world.load()
    world.vision = Demand(in_flight=1, last_use=world.now)
    critical = {"may_load": False, "may_hold": False, "refusal": "memory critical"}
    assert world.policy.decide(dataclasses.replace(world.seen(), **critical)) == []  # it finishes first
    world.vision = Demand(last_use=world.now)
    (release,) = world.policy.decide(dataclasses.replace(world.seen(), **critical))
    assert release.scope == ReleaseScope.VLM and release.reason == "memory critical"  # CLIP stays
    world.worker = WorkerState.RELEASED
    world.request()
    assert world.policy.decide(dataclasses.replace(world.seen(), **critical)) == []
    assert world.policy.decide(world.seen())[0].kind == ActionKind.LOAD  # memory back: loaded again


def test_a_clients_keep_alive_zero_unloads_after_its_work_and_stays_unloaded_until_new_work() -> None:
    world = World(ollama=ABSENT)  # persistent, nobody else: normally never released
    world.load()
    world.vision = Demand(in_flight=1, last_use=world.now)
    world.policy.keep_alive(world.now, 0)  # Ollama's {"keep_alive": 0}, with a prompt
    assert world.decide() == []  # its answer runs first
    world.serve()
    (release,) = world.decide()
    assert "keep_alive 0" in release.reason
    world.worker = WorkerState.RELEASED
    world.wait(1000)
    assert world.decide() == []  # not kept warm again on its own
    world.request()
    assert world.kinds() == [ActionKind.LOAD]


def test_a_clients_keep_alive_in_seconds_holds_off_the_idle_release() -> None:
    world = World()
    world.load()
    world.policy.keep_alive(world.now, 600)
    world.wait(300)
    assert world.decide() == []  # idle 300 s > vlm_idle_release_s, but kept for 600 s
    assert world.policy.release_at(world.seen()) == 600
    world.wait(300)
    assert world.kinds() == [ActionKind.RELEASE]


@pytest.mark.parametrize(("policy", "kept"), [(Policy.SHARE, False), (Policy.VISION_FIRST, True)])
def test_keep_alive_forever_pins_the_vlm_only_where_the_policy_lets_it(policy: Policy, kept: bool) -> None:
    world = World(dataclasses.replace(SETTINGS, policy=policy))
    world.load()
    world.policy.keep_alive(world.now, -1)  # Home Assistant sends this with every chat
    world.wait(10_000)
    assert (world.decide() == []) == kept
