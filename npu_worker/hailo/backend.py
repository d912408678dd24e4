"""HailoBackend: the Backend interface over one SHARED VDevice hosting the VLM HEF and the CLIP image HEF.

CLIP text embeddings are computed on the CPU with the matching CLIP export's onnx/text_model.onnx, as
hailo-apps does; the logit scale comes from that export's config.json. Load order: everything that
can fail without the device first (HailoRT import, HEF paths, the CPU text encoder), then the device,
then the VLM (the load most likely to find the device busy), then the CLIP encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npu_worker.backend import (
    GenerationEvent,
    Message,
    ModelInfo,
    ModelLoadError,
    SamplingParams,
    UnknownModelError,
)
from npu_worker.config import Config
from npu_worker.cpu.clip_runner import CAPABILITIES as CLIP_CAPABILITIES
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.hailo.clip import HailoClipImageEncoder
from npu_worker.hailo.device import open_vdevice, release_quietly
from npu_worker.hailo.features import HailoFeatures, detect_features
from npu_worker.hailo.load_failures import LoadFailures
from npu_worker.hailo.runtime import HailoModules, import_hailo
from npu_worker.hailo.vlm import BACKEND_NAME, HailoVLM
from npu_worker.logs import log_event
from npu_worker.warmup import warm_up

log = logging.getLogger("npu_worker.hailo")


def resolve_hef(directory: str, configured: str, key: str) -> Path:
    """The HEF `configured` names (absolute, or inside `directory`), or the only *.hef in `directory`."""
    if configured:
        path = Path(configured) if Path(configured).is_absolute() else Path(directory) / configured
        if not path.is_file():
            raise ModelLoadError(f"{path}: HEF not found (set by {key})")
        return path
    folder = Path(directory)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: model directory not found (it should hold the HEF; see {key})")
    found = sorted(folder.glob("*.hef"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found)
        what = f"{len(found)} .hef files ({names})" if found else "no .hef file"
        raise ModelLoadError(f"{folder}: {what}; name the HEF with {key}")
    return found[0]


class HailoBackend:
    name = "hailo"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.failures = LoadFailures()  # kept across load attempts: it counts uncertain retries
        self.hailo: HailoModules | None = None
        self.features: HailoFeatures | None = None
        self.vdevice: Any = None
        self.vlm: HailoVLM | None = None
        self.clip_images: HailoClipImageEncoder | None = None
        self.clip_text: ClipRunner | None = None
        self.clip_info: ModelInfo | None = None

    def load(self) -> None:
        hailo = self.hailo = import_hailo()
        self.features = detect_features(hailo.platform, hailo.genai)
        log_event(
            log, "hailort_detected", version=self.features.version, features=",".join(self.features.names)
        )
        model, clip, settings = self.config.model, self.config.clip, self.config.hailo
        vlm_hef = resolve_hef(model.path, settings.vlm_hef, "hailo.vlm_hef")
        clip_hef = resolve_hef(clip.path, settings.clip_hef, "hailo.clip_hef") if clip.enabled else None
        if clip.enabled and self.clip_text is None:  # kept across retries while the device is busy
            threads = self.config.resources.cpu_threads or None
            self.clip_text = ClipRunner(clip.path, threads, model_id=clip.name, image_encoder=False)
        self.vdevice = open_vdevice(hailo, settings.group_id, self.failures)
        try:
            self.vlm = HailoVLM(
                hailo,
                self.vdevice,
                vlm_hef,
                model.name,
                self.features,
                settings,
                self.failures,
                model.context_length,
            )
            if clip_hef is not None:
                self._load_clip(hailo, clip_hef)
            if model.warmup:
                warm_up(self.vlm.generate)
        except BaseException:
            self._release_device()
            raise
        self.failures.loaded()

    def _load_clip(self, hailo: HailoModules, hef: Path) -> None:
        text = self.clip_text
        assert text is not None
        self.clip_images = HailoClipImageEncoder(
            hailo,
            self.vdevice,
            hef,
            text.image_config,
            text.embedding_dim,
            self.config.resources.max_batch_size,
            float_output=self.config.hailo.clip_output == "float32",
            timeout_s=self.config.hailo.read_timeout_s,
            failures=self.failures,
        )
        self.clip_info = ModelInfo(
            id=text.info.id,
            kind="clip",
            backend=BACKEND_NAME,
            embedding_dim=text.embedding_dim,
            image_size=text.image_config.output_size,
            capabilities=CLIP_CAPABILITIES,
        )

    def _release_device(self) -> None:
        """Release the models on the device, then the device (so hailo-ollama can have it)."""
        if self.vlm is not None:
            self.vlm.release()
        if self.clip_images is not None:
            self.clip_images.release()
        if self.vdevice is not None and self.hailo is not None:
            release_quietly(self.hailo, "VDevice", self.vdevice.release)
        self.vlm = self.clip_images = self.clip_info = self.vdevice = None

    def unload(self) -> None:
        self._release_device()
        self.clip_text = None

    def describe(self) -> list[ModelInfo]:
        vlm_info = self.vlm.info if self.vlm is not None else None
        return [info for info in (vlm_info, self.clip_info) if info is not None]

    def details(self) -> dict[str, Any]:
        if self.features is None:
            return {}
        settings = self.config.hailo
        facts: dict[str, Any] = {**self.features.as_dict(), "vdevice_group": settings.group_id}
        if self.vlm is not None:
            facts.update(
                vlm_frame_shape=list(self.vlm.frame_shape),
                vlm_context_length=self.vlm.context_length,
                vlm_image_tokens_per_frame=self.vlm.tokens_per_frame,
            )
        if self.clip_images is not None:
            facts.update(
                clip_output=settings.clip_output,
                clip_batch_size=self.clip_images.batch_size,
                clip_text_encoder="onnxruntime (CPU)",
            )
        return facts

    def _vlm(self, model: str) -> HailoVLM:
        if self.vlm is None or model != self.vlm.info.id:
            raise UnknownModelError(f"no vision-language model {model!r} is loaded")
        return self.vlm

    def _clip(self, model: str) -> tuple[HailoClipImageEncoder, ClipRunner]:
        images, text, info = self.clip_images, self.clip_text, self.clip_info
        if images is None or text is None or info is None or model != info.id:
            raise UnknownModelError(f"no CLIP model {model!r} is loaded")
        return images, text

    def generate(
        self, model: str, messages: Sequence[Message], params: SamplingParams
    ) -> Iterator[GenerationEvent]:
        return self._vlm(model).generate(messages, params)

    def count_tokens(self, model: str, messages: Sequence[Message]) -> int:
        return self._vlm(model).count_tokens(messages)

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        return self._clip(model)[0].embed(images)

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        return self._clip(model)[1].embed_texts(texts)

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        return self._clip(model)[1].count_tokens(texts)

    def logit_scale(self, model: str) -> float:
        return self._clip(model)[1].logit_scale
