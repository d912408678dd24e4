"""A scripted backend and a hand-driven clock for in-process tests of the compute loop (test-only).

The engine's `step()` decides and carries out one step without waiting, so a test advances the
clock itself and asserts what the engine did - no thread, no sleep, no model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from npu_worker.backend import (
    DeviceBusyError,
    DeviceReleasedError,
    Finish,
    GenerationEvent,
    Message,
    ModelInfo,
    Placement,
    ReleaseScope,
    SamplingParams,
    Token,
)
from npu_worker.config import Config, ResourcesConfig, SchedulerConfig
from npu_worker.engine import Engine
from npu_worker.protocol import Wire

DIM = 4


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedBackend:
    """A device-using backend: `busy_loads` loads fail as busy first; each generation yields
    `tokens` tokens, each taking `token_s` on the clock; CLIP runs on the NPU while loaded and on
    the CPU otherwise when `cpu_clip`."""

    name = "scripted"
    uses_device = True

    def __init__(self, clock: Clock, busy_loads: int = 0, tokens: int = 3, cpu_clip: bool = True) -> None:
        self.clock = clock
        self.busy_loads = busy_loads
        self.tokens = tokens
        self.cpu_clip = cpu_clip
        self.token_s = 0.1
        self.loaded = False
        self.calls: list[str] = []

    def prepare(self) -> None:
        self.calls.append("prepare")

    def load(self, vlm: bool = True) -> None:
        self.calls.append("load" if vlm else "load:clip")
        if self.busy_loads:
            self.busy_loads -= 1
            raise DeviceBusyError("held by pid 812 (hailo-ollama)")
        self.loaded = True

    def release(self, scope: ReleaseScope) -> None:
        self.calls.append(f"release:{scope}")
        self.loaded = False

    def unload(self) -> None:
        self.loaded = False

    def limit_kept_contexts(self, share: float) -> None:
        self.calls.append(f"kept_contexts:{share}")

    def describe(self) -> list[ModelInfo]:
        return [ModelInfo("vlm", "vlm", self.name), ModelInfo("clip", "clip", self.name, embedding_dim=DIM)]

    def details(self) -> dict[str, Any]:
        return {}

    def chip_temperature(self) -> float | None:
        return None

    def clip_placement(self) -> Placement:
        return Placement.NPU if self.loaded else Placement.CPU if self.cpu_clip else Placement.NONE

    def generate(
        self, model: str, messages: Sequence[Message], params: SamplingParams
    ) -> Iterator[GenerationEvent]:
        if not self.loaded:
            raise DeviceReleasedError("not on the device")
        self.calls.append("generate")
        for index in range(self.tokens):
            self.clock.advance(self.token_s)
            yield Token(f"t{index}", index)
        yield Finish("stop", 5, self.tokens)

    def count_tokens(self, model: str, messages: Sequence[Message]) -> int:
        return 5

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(f"images:{'npu' if self.loaded else 'cpu'}:{len(images)}")
        return np.tile(np.eye(DIM, dtype=np.float32)[0], (len(images), 1))

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        return np.tile(np.eye(DIM, dtype=np.float32)[1], (len(texts), 1))

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        return len(texts)

    def logit_scale(self, model: str) -> float:
        return 100.0


def make_engine(backend: ScriptedBackend, clock: Clock, max_batch: int = 4) -> tuple[Engine, list[Wire]]:
    """An engine on `backend`, prepared; what it emits is collected in the returned list."""
    sent: list[Wire] = []
    fatal: list[str] = []
    config = Config(
        scheduler=SchedulerConfig(load_retry_initial_s=1.0, load_retry_max_s=4.0),
        resources=ResourcesConfig(max_batch_size=max_batch),
    )
    engine = Engine(backend, sent.append, fatal.append, config, clock)
    assert engine.prepare()
    return engine, sent
