"""The CPU backend: the Qwen2-VL and CLIP runners on ONNX Runtime behind the Backend interface.

No device to share: CLIP is loaded once at start and stays; the VLM's sessions are what load() and
release() make and drop (a release frees their memory, e.g. while the scheduler's memory policy
asks for it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from npu_worker.backend import (
    DeviceReleasedError,
    GenerationEvent,
    Message,
    ModelInfo,
    Placement,
    ReleaseScope,
    SamplingParams,
    UnknownModelError,
)
from npu_worker.config import Config
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.warmup import warm_up


class OnnxBackend:
    name = "onnx"
    uses_device = False

    def __init__(self, config: Config) -> None:
        self.config = config
        self.threads = config.resources.cpu_threads or None
        self.vlm: Qwen2VLRunner | None = None
        self.vlm_info = ModelInfo(config.model.name, "vlm", self.name)  # full facts after a load
        self.clip: ClipRunner | None = None
        self.prepared = False
        self.context_share = 1.0  # of inference.context_reuse_mb (the degradation ladder's word)

    def prepare(self) -> None:
        self.prepared = True
        if self.config.clip.enabled:
            clip = self.config.clip
            self.clip = ClipRunner(Path(clip.path), model_id=clip.name, threads=self.threads)

    def load(self, vlm: bool = True) -> None:
        if not self.prepared:
            self.prepare()
        if self.vlm is not None or not vlm:
            return
        model = self.config.model
        self.vlm = Qwen2VLRunner(
            Path(model.path),
            model_id=model.name,
            decoder_variant=model.decoder_variant or None,
            threads=self.threads,
            context_length=model.context_length or None,
            kept_contexts=self.config.inference.context_reuse_entries,
            kept_context_bytes=self._kept_context_bytes(),
        )
        self.vlm_info = self.vlm.info
        if model.warmup:
            warm_up(self.vlm.generate)

    def release(self, scope: ReleaseScope) -> None:
        if self.vlm is not None:
            self.vlm.contexts.clear()  # nothing kept survives a release, even if the runner lived on
        self.vlm = None

    def limit_kept_contexts(self, share: float) -> None:
        self.context_share = share
        if self.vlm is not None:
            self.vlm.contexts.resize(self._kept_context_bytes())

    def _kept_context_bytes(self) -> int:
        return int(self.config.inference.context_reuse_mb * 2**20 * self.context_share)

    def unload(self) -> None:
        self.vlm = None
        self.clip = None
        self.prepared = False

    def describe(self) -> list[ModelInfo]:
        return [self.vlm_info, *([self.clip.info] if self.clip is not None else [])]

    def clip_placement(self) -> Placement:
        return Placement.CPU if self.clip is not None else Placement.NONE

    def chip_temperature(self) -> float | None:
        return None  # the CPU's is the SoC's, which the API reads from sysfs

    def details(self) -> dict[str, Any]:
        return {"onnxruntime": ort.__version__, "providers": ["CPUExecutionProvider"]}

    def _vlm(self, model: str) -> Qwen2VLRunner:
        if model != self.vlm_info.id:
            raise UnknownModelError(f"no vision-language model {model!r} is loaded")
        if self.vlm is None:
            raise DeviceReleasedError(f"{model} is released; it is loaded again when it is next needed")
        return self.vlm

    def _clip(self, model: str) -> ClipRunner:
        if self.clip is None or model != self.clip.info.id:
            raise UnknownModelError(f"no CLIP model {model!r} is loaded")
        return self.clip

    def generate(
        self, model: str, messages: Sequence[Message], params: SamplingParams
    ) -> Iterator[GenerationEvent]:
        return self._vlm(model).generate(messages, params)

    def count_tokens(self, model: str, messages: Sequence[Message]) -> int:
        return self._vlm(model).count_tokens(messages)

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        return self._clip(model).embed_images(images)

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        return self._clip(model).embed_texts(texts)

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        return self._clip(model).count_tokens(texts)

    def logit_scale(self, model: str) -> float:
        return self._clip(model).logit_scale
