"""The CPU backend: the Qwen2-VL and CLIP runners on ONNX Runtime behind the Backend interface."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from npu_worker.backend import (
    GenerationEvent,
    Message,
    ModelInfo,
    SamplingParams,
    UnknownModelError,
)
from npu_worker.config import Config
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.warmup import warm_up


class OnnxBackend:
    name = "onnx"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.vlm: Qwen2VLRunner | None = None
        self.clip: ClipRunner | None = None

    def load(self) -> None:
        threads = self.config.resources.cpu_threads or None
        model = self.config.model
        self.vlm = Qwen2VLRunner(
            Path(model.path),
            model_id=model.name,
            decoder_variant=model.decoder_variant or None,
            threads=threads,
            context_length=model.context_length or None,
        )
        if self.config.clip.enabled:
            clip = self.config.clip
            self.clip = ClipRunner(Path(clip.path), model_id=clip.name, threads=threads)
        if model.warmup:
            warm_up(self.vlm.generate)

    def unload(self) -> None:
        self.vlm = None
        self.clip = None

    def describe(self) -> list[ModelInfo]:
        return [runner.info for runner in (self.vlm, self.clip) if runner is not None]

    def details(self) -> dict[str, Any]:
        return {"onnxruntime": ort.__version__, "providers": ["CPUExecutionProvider"]}

    def _vlm(self, model: str) -> Qwen2VLRunner:
        if self.vlm is None or model != self.vlm.info.id:
            raise UnknownModelError(f"no vision-language model {model!r} is loaded")
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
