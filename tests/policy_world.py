"""The turn policy in a world moved by hand, for the policy's tests: time, the worker, hailo-ollama."""

from __future__ import annotations

import dataclasses

from npu_worker.states import WorkerState
from scheduler.policy import TurnPolicy
from scheduler.turn_types import Action, ActionKind, Demand, Observation, OllamaView, Phase, Settings

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
