"""The turn policy, pure: what it decides for each situation, with time passed in by hand."""

from __future__ import annotations

import dataclasses

import pytest

from npu_worker.backend import ReleaseScope
from npu_worker.states import NpuOwner, WorkerState
from scheduler.policy import TurnPolicy
from scheduler.turn_types import Action, ActionKind, Demand, Observation, OllamaView, Phase, Policy, Settings

IDLE = OllamaView(reachable=True)
HOLDING = OllamaView(reachable=True, models=("qwen2.5:1.5b",))
GENERATING = OllamaView(reachable=True, busy=True)
ABSENT = OllamaView(reachable=False)
SETTINGS = Settings(idle_release_s=120, min_residency_s=30, max_wait_s=60)


class World:
    """A policy and the world it sees, moved by hand."""

    def __init__(self, settings: Settings = SETTINGS, ollama: OllamaView = IDLE) -> None:
        self.now = 0.0
        self.policy = TurnPolicy(settings, self.now)
        self.worker: WorkerState | None = WorkerState.RELEASED
        self.ollama = ollama
        self.vision = Demand()

    def decide(self) -> list[Action]:
        return self.policy.decide(self.seen())

    def seen(self) -> Observation:
        return Observation(self.now, self.worker, self.ollama, self.vision)

    def kinds(self) -> list[ActionKind]:
        return [a.kind for a in self.decide()]

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def request(self, waited_s: float = 0.0) -> None:
        self.vision = dataclasses.replace(self.vision, waiting=1, oldest_wait_s=waited_s)

    def serve(self) -> None:
        """The waiting request runs now, and ends."""
        self.vision = Demand(last_use=self.now)

    def load(self) -> None:
        """Take the device as the policy asks and reach READY."""
        assert ActionKind.LOAD in self.kinds()
        self.worker = WorkerState.READY
        assert self.decide() == []
        assert self.policy.phase == Phase.HOLDING


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
