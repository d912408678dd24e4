"""HailoBackend: the Backend interface over one SHARED VDevice hosting the VLM HEF and the CLIP image HEF.

CLIP text embeddings are computed on the CPU with the matching CLIP export's onnx/text_model.onnx, as
hailo-apps does; the logit scale comes from that export's config.json. prepare() does, once, all that
can fail without the device (HailoRT import, HEF paths, the CPU text encoder and, when configured, the
CPU image encoder that serves CLIP while the NPU is given back). load() takes the device and loads
the VLM (the load most likely to find the device busy), then the CLIP encoder; release() gives back
the VLM alone (hailo-ollama in the same VDevice group needs only the KV cache) or everything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npu_worker.backend import (
    DeviceReleasedError,
    GenerationEvent,
    Message,
    ModelInfo,
    ModelLoadError,
    Placement,
    ReleaseScope,
    SamplingParams,
    UnknownModelError,
)
from npu_worker.config import Config
from npu_worker.cpu.clip_runner import CAPABILITIES as CLIP_CAPABILITIES
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.hailo.chip import ChipThermometer
from npu_worker.hailo.clip import HailoClipImageEncoder
from npu_worker.hailo.device import open_vdevice, release_quietly
from npu_worker.hailo.features import HailoFeatures, detect_features
from npu_worker.hailo.load_failures import LoadFailures
from npu_worker.hailo.runtime import HailoModules, import_hailo
from npu_worker.hailo.vlm import BACKEND_NAME, HailoVLM
from npu_worker.logs import log_event
from npu_worker.structured import validated
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
    uses_device = True

    def __init__(self, config: Config) -> None:
        self.config = config
        self.failures = LoadFailures()  # kept across load attempts: it times uncertain "busy" readings
        self.hailo: HailoModules | None = None
        self.features: HailoFeatures | None = None
        self.vlm_hef = self.clip_hef = Path()
        self.vdevice: Any = None
        self.vlm: HailoVLM | None = None
        self.vlm_info = ModelInfo(config.model.name, "vlm", BACKEND_NAME)  # full facts after a load
        self.clip_images: HailoClipImageEncoder | None = None
        self.clip_text: ClipRunner | None = None  # CPU: text encoder, and image encoder when a fallback
        self.clip_info: ModelInfo | None = None
        self.thermometer: ChipThermometer | None = None
        self.context_share = 1.0  # of inference.context_reuse_entries (the degradation ladder's word)

    def prepare(self) -> None:
        """HailoRT, the HEF paths and the CPU side of CLIP: everything that can fail without the device."""
        hailo = self.hailo = import_hailo()
        self.thermometer = ChipThermometer(hailo.platform)
        self.features = detect_features(hailo.platform, hailo.genai)
        log_event(
            log, "hailort_detected", version=self.features.version, features=",".join(self.features.names)
        )
        model, clip, settings = self.config.model, self.config.clip, self.config.hailo
        self.vlm_hef = resolve_hef(model.path, settings.vlm_hef, "hailo.vlm_hef")
        if not clip.enabled:
            return
        self.clip_hef = resolve_hef(clip.path, settings.clip_hef, "hailo.clip_hef")
        threads = self.config.resources.cpu_threads or None
        fallback = self.config.scheduler.clip_without_npu == "cpu"
        has_image_encoder = (Path(clip.path) / "onnx" / "vision_model.onnx").is_file()
        if fallback and not has_image_encoder:
            log_event(
                log,
                "clip_cpu_fallback_unavailable",
                logging.WARNING,
                path=str(clip.path),
                reason="no onnx/vision_model.onnx; CLIP waits for the NPU while it is given back",
            )
        with_images = fallback and has_image_encoder
        text = ClipRunner(clip.path, threads, model_id=clip.name, image_encoder=with_images)
        self.clip_text = text
        self.clip_info = ModelInfo(
            id=text.info.id,
            kind="clip",
            backend=BACKEND_NAME,
            embedding_dim=text.embedding_dim,
            image_size=text.image_config.output_size,
            capabilities=CLIP_CAPABILITIES,
        )

    def load(self, vlm: bool = True) -> None:
        """Take the device, then load what is not on it yet: the VLM (the load most likely to find the
        device busy; skipped when `vlm` is False), then the CLIP encoder."""
        if self.hailo is None:
            self.prepare()
        hailo, features = self.hailo, self.features
        assert hailo is not None and features is not None
        model, settings = self.config.model, self.config.hailo
        if self.vdevice is None:
            self.vdevice = open_vdevice(hailo, settings.group_id, self.failures)
        try:
            if vlm and self.vlm is None:
                self.vlm = HailoVLM(
                    hailo,
                    self.vdevice,
                    self.vlm_hef,
                    model.name,
                    features,
                    settings,
                    self.failures,
                    model.context_length,
                    self.config.inference.context_reuse_entries,
                )
                self.vlm_info = self.vlm.info
                self.vlm.book.limit_saved(self._saved_contexts())
                if model.warmup:
                    warm_up(self.vlm.generate)
            if self.clip_text is not None and self.clip_images is None:
                self._load_clip(hailo, self.clip_text)
        except BaseException:
            self.release(ReleaseScope.DEVICE)
            raise
        self.failures.loaded()

    def _load_clip(self, hailo: HailoModules, text: ClipRunner) -> None:
        self.clip_images = HailoClipImageEncoder(
            hailo,
            self.vdevice,
            self.clip_hef,
            text.image_config,
            text.embedding_dim,
            self.config.resources.max_batch_size,
            float_output=self.config.hailo.clip_output == "float32",
            timeout_s=self.config.hailo.read_timeout_s,
            failures=self.failures,
        )

    def limit_kept_contexts(self, share: float) -> None:
        """Only the saved contexts take host memory (the live one is on the device): fewer of them."""
        self.context_share = share
        if self.vlm is not None:
            self.vlm.book.limit_saved(self._saved_contexts())

    def _saved_contexts(self) -> int:
        return int(self.config.inference.context_reuse_entries * self.context_share)

    def release(self, scope: ReleaseScope) -> None:
        """Release the VLM (its KV cache is what hailo-ollama needs), and with DEVICE the CLIP encoder
        and the VDevice too, so hailo-ollama can open its own."""
        if self.vlm is not None:
            self.vlm.release()
            self.vlm = None
        if scope == ReleaseScope.DEVICE:
            if self.clip_images is not None:
                self.clip_images.release()
                self.clip_images = None
            if self.vdevice is not None and self.hailo is not None:
                release_quietly(self.hailo, "VDevice", self.vdevice.release)
                self.vdevice = None

    def unload(self) -> None:
        self.release(ReleaseScope.DEVICE)
        self.clip_text = self.clip_info = None

    def describe(self) -> list[ModelInfo]:
        return [self.vlm_info, *([self.clip_info] if self.clip_info is not None else [])]

    def chip_temperature(self) -> float | None:
        return self.thermometer.celsius() if self.thermometer is not None else None

    def clip_placement(self) -> Placement:
        if self.clip_images is not None:
            return Placement.NPU
        if self.clip_text is not None and self.clip_text.has_image_encoder:
            return Placement.CPU
        return Placement.NONE

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
        if model != self.vlm_info.id:
            raise UnknownModelError(f"no vision-language model {model!r} is loaded")
        if self.vlm is None:
            raise DeviceReleasedError(f"{model} is not on the NPU now; hailo-vision takes it back in turn")
        return self.vlm

    def _clip(self, model: str) -> ClipRunner:
        text, info = self.clip_text, self.clip_info
        if text is None or info is None or model != info.id:
            raise UnknownModelError(f"no CLIP model {model!r} is loaded")
        return text

    def generate(
        self, model: str, messages: Sequence[Message], params: SamplingParams
    ) -> Iterator[GenerationEvent]:
        vlm = self._vlm(model)
        if not params.json_schema:
            return vlm.generate(messages, params)
        # no logits to constrain on the device: validate each answer and try again (npu_worker/structured.py)
        attempts = self.config.inference.structured_output_attempts
        return validated(lambda tries: vlm.generate(messages, tries), params, attempts)

    def count_tokens(self, model: str, messages: Sequence[Message]) -> int:
        return self._vlm(model).count_tokens(messages)

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        """On the NPU while the encoder is there, else on the CPU fallback when there is one."""
        text = self._clip(model)
        if self.clip_images is not None:
            return self.clip_images.embed(images)
        if text.has_image_encoder:
            return text.embed_images(images)
        raise DeviceReleasedError(f"{model}'s image encoder is not on the NPU now, and no CPU fallback")

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        return self._clip(model).embed_texts(texts)

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        return self._clip(model).count_tokens(texts)

    def logit_scale(self, model: str) -> float:
        return self._clip(model).logit_scale
