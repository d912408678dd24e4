"""What the turn policy (scheduler/policy.py) is told and what it answers, as plain values.

Settings from the configuration; an Observation of the world (the worker's state, hailo-ollama as
/api/ps shows it, each side's demand, the degradation ladder's word); Actions to carry out; Figures
for /health, /metrics and the simulation benchmark. The driver builds and carries these out; the
policy only reads and returns them, so it is tested with no I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from npu_worker.backend import ReleaseScope
from npu_worker.config import Config
from npu_worker.states import WorkerState


class Policy(enum.StrEnum):
    SHARE = "share"
    VISION_FIRST = "vision-first"
    OLLAMA_FIRST = "ollama-first"
    EXCLUSIVE = "exclusive"


class Phase(enum.StrEnum):
    """Where hailo-vision is in taking and giving back the device."""

    RELEASED = "released"  # the device is not hailo-vision's
    UNLOADING_OLLAMA = "unloading_ollama"  # hailo-ollama was asked to unload (after its running answer)
    LOADING = "loading"  # the worker was told to load (it retries while the device is held)
    HOLDING = "holding"  # the models are on the device
    RELEASING = "releasing"  # the worker was told to release (after its running work)


class ActionKind(enum.StrEnum):
    UNLOAD_OLLAMA = "unload_ollama"
    LOAD = "load"
    RELEASE = "release"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str
    model: str = ""  # UNLOAD_OLLAMA: hailo-ollama's loaded model
    scope: ReleaseScope = ReleaseScope.DEVICE  # RELEASE


@dataclass(frozen=True)
class Settings:
    policy: Policy = Policy.SHARE
    uses_device: bool = True  # False on the CPU backend: only the idle release of a non-persistent model
    persistent: bool = True
    ollama_configured: bool = True
    ollama_shares_device: bool = False
    idle_release_s: float = 120.0
    min_residency_s: float = 30.0
    max_wait_s: float = 60.0
    # Every hailo-ollama client comes through hailo-vision's door, so its demand is seen: a persistent
    # VLM is then given back only when hailo-ollama work waits (not on mere idleness), and taken back
    # once hailo-ollama has been idle for idle_release_s.
    ollama_demand_visible: bool = False

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        s = config.scheduler
        return cls(
            policy=Policy(s.policy),
            uses_device=config.backend == "hailo",
            persistent=config.model.persistent,
            ollama_configured=bool(s.ollama_url),
            ollama_shares_device=s.ollama_shares_device,
            idle_release_s=s.vlm_idle_release_s,
            min_residency_s=s.min_residency_s,
            max_wait_s=s.max_wait_s,
            ollama_demand_visible=s.ollama_clients == "door",
        )


@dataclass(frozen=True)
class OllamaView:
    """hailo-ollama as last seen through /api/ps."""

    reachable: bool = False
    busy: bool = False  # /api/ps did not answer in time: it is generating
    models: tuple[str, ...] = ()  # loaded models

    @property
    def holds_device(self) -> bool:
        return self.reachable and (self.busy or bool(self.models))


@dataclass(frozen=True)
class Demand:
    """Work of one side that needs the device: waiting for it, and running on it."""

    waiting: int = 0
    oldest_wait_s: float = 0.0
    in_flight: int = 0
    last_use: float = -math.inf  # when work of this side last started or ended

    @property
    def active(self) -> bool:
        return self.waiting > 0 or self.in_flight > 0


@dataclass(frozen=True)
class Observation:
    now: float
    worker: WorkerState | None  # None: no worker process (starting or restarting)
    ollama: OllamaView = field(default_factory=OllamaView)
    vision: Demand = field(default_factory=Demand)
    # hailo-ollama work that came through hailo-vision's door: waiting for its turn, or running there
    ollama_work: Demand = field(default_factory=Demand)
    # The degradation ladder's word (scheduler/ladder.py): may the VLM be loaded, may it stay, and why not
    may_load: bool = True
    may_hold: bool = True
    refusal: str = ""
    worker_detail: str = ""  # the worker's own word on its state: names the device's holders while busy


@dataclass
class Figures:
    """What /health, /metrics and the benchmark report."""

    switches: int = 0
    switch_seconds: float = 0.0  # total time from a switch's decision to its end
    last_switch_s: float = 0.0
