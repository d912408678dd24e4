"""Qwen2-VL on the Hailo-10H through hailo_platform.genai.VLM: prompts, frames, counting, streaming.

Stateless per request: the device context is cleared before each generation, the messages go to the
device as its message dicts (one {"type": "image"} per frame; the HEF's chat template is applied on
the device), frames are squashed to the HEF's frame shape. Tokens are read from the generation's
context manager; leaving it (the engine closes this generator on abort or timeout) releases the
completion, which aborts the device's work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npu_worker.backend import (
    ContextLengthError,
    DeviceFailedError,
    Finish,
    GenerationEvent,
    InvalidRequestError,
    Message,
    ModelInfo,
    ModelLoadError,
    SamplingParams,
    TextPart,
    Token,
)
from npu_worker.chat_template import ChatTemplate, template_messages, validate_messages
from npu_worker.config import HailoConfig
from npu_worker.hailo.device import described, release_quietly, work_errors
from npu_worker.hailo.failures import Call
from npu_worker.hailo.features import HailoFeatures
from npu_worker.hailo.load_failures import LoadFailures, LoadSite
from npu_worker.hailo.runtime import HailoModules
from npu_worker.hailo.sampling import check_supported, generate_kwargs
from npu_worker.stop_strings import StopStringFilter

log = logging.getLogger(__name__)

BACKEND_NAME = "hailort"
FALLBACK_CONTEXT = 2048  # the context the published Hailo-10H GenAI HEFs are compiled for
MERGED_PATCH = 28  # Qwen2-VL: 14-pixel patches, 2x2 merged into one image token
IMAGE_PAD = "<|image_pad|>"  # Qwen2-VL's placeholder; the device puts the frame's tokens there
SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]+\|>")
NO_TOKEN_ID = -1  # the device streams text, not ids
RECOVERY_READS = 16  # most pieces read after max_generated_tokens before giving up on the device
GENERATING = "GENERATING"
MAX_TOKENS_REACHED = "MAX_TOKENS_REACHED"


def _status(completion: Any) -> str:
    status = completion.generation_status
    return str(getattr(status, "name", status)).rsplit(".", 1)[-1]


class HailoVLM:
    """One VLM HEF loaded on an open VDevice."""

    def __init__(
        self,
        hailo: HailoModules,
        vdevice: Any,
        hef: Path,
        model_id: str,
        features: HailoFeatures,
        settings: HailoConfig,
        failures: LoadFailures,
        context_limit: int = 0,
    ) -> None:
        self.hailo = hailo
        self.settings = settings
        self.failure: str | None = None  # set when the device failed outside a request's reach
        kwargs: dict[str, Any] = {}
        if features.optimize_memory_on_device:
            kwargs["optimize_memory_on_device"] = settings.optimize_memory_on_device
        elif settings.optimize_memory_on_device:
            log.warning("hailo.optimize_memory_on_device ignored: HailoRT %s lacks it", features.version)
        optimize = bool(kwargs.get("optimize_memory_on_device"))
        with failures.guard(hailo, LoadSite(Call.GENAI_CREATE, "VLM", hef), optimize):
            self.vlm = hailo.genai.VLM(vdevice, str(hef), **kwargs)
        try:
            with failures.guard(hailo, LoadSite(Call.GENAI_QUERY, "VLM", hef)):
                height, width, channels = (int(d) for d in self.vlm.input_frame_shape())
                self.frame_dtype = np.dtype(self.vlm.input_frame_format_type())
                template = self.vlm.prompt_template()
                capacity = int(self.vlm.max_context_capacity()) if features.max_context_capacity else 0
            if channels != 3:
                raise ModelLoadError(f"{hef}: takes {channels}-channel frames; only RGB (3) is supported")
            self.frame_shape = (height, width, channels)
            self.template = ChatTemplate(template, {}, origin=f"{hef} (prompt_template())")
            self.context_length = self._context_length(capacity, context_limit)
        except BaseException:
            self.release()
            raise
        self.tokens_per_frame = settings.image_tokens_per_frame or max(
            1, (height // MERGED_PATCH) * (width // MERGED_PATCH)
        )
        self.info = ModelInfo(
            id=model_id,
            kind="vlm",
            backend=BACKEND_NAME,
            context_length=self.context_length,
            min_pixels=height * width,
            max_pixels=height * width,
            capabilities=frozenset({"chat", "vision"}),
        )

    @staticmethod
    def _context_length(capacity: int, limit: int) -> int:
        """The device's capacity (HailoRT 5.1.1+), else the configured one, else the HEFs' 2048."""
        if capacity:
            return min(capacity, limit) if limit else capacity
        if not limit:
            log.warning("HailoRT cannot report the VLM's context size; assuming %d tokens", FALLBACK_CONTEXT)
        return limit or FALLBACK_CONTEXT

    def release(self) -> None:
        vlm, self.vlm = getattr(self, "vlm", None), None
        if vlm is not None:
            release_quietly(self.hailo, "VLM", vlm.release)

    def frame(self, pixels: np.ndarray) -> np.ndarray:
        """An RGB uint8 image as the device's frame: squashed to its shape, its dtype, C-contiguous."""
        height, width, _ = self.frame_shape
        if pixels.shape[:2] != (height, width):
            pixels = np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC))
        return np.ascontiguousarray(pixels, dtype=self.frame_dtype)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The rendered prompt's tokens (device tokenizer) plus each frame's image tokens."""
        if any(IMAGE_PAD in p.text for m in messages for p in m.parts if isinstance(p, TextPart)):
            # The device would find more image placeholders than frames and fail mid-generation.
            raise InvalidRequestError(
                f"message text must not contain the image token {IMAGE_PAD}", "messages"
            )
        text = self.template.render(messages)
        images = sum(len(m.images) for m in messages)
        with work_errors(self.hailo, "tokenization"):
            text_tokens = len(self.vlm.tokenize(text.replace(IMAGE_PAD, "")))
        return text_tokens + images * self.tokens_per_frame

    def generate(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[GenerationEvent]:
        """Validate now (before any event), then stream from the device."""
        if self.failure:
            raise DeviceFailedError(self.failure)
        validate_messages(messages)
        check_supported(params)
        if params.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be >= 1, got {params.max_tokens}", "max_tokens")
        prompt_tokens = self.count_tokens(messages)
        if prompt_tokens + 1 > self.context_length:
            raise ContextLengthError(prompt_tokens, self.context_length)
        budget = min(params.max_tokens, self.context_length - prompt_tokens)
        frames = [self.frame(image) for message in messages for image in message.images]
        kwargs = generate_kwargs(params, self.settings.default_top_k, budget)
        return self._stream(template_messages(messages), frames, kwargs, prompt_tokens, params.stop)

    def _stream(
        self,
        prompt: list[dict[str, Any]],
        frames: list[np.ndarray],
        kwargs: dict[str, Any],
        prompt_tokens: int,
        stop: Sequence[str],
    ) -> Iterator[GenerationEvent]:
        """Start the device's generation, read it inside its context, always leave the context.

        A failure to release the completion while the engine closes this generator must not raise
        (close() would pass it to the engine); it is remembered and fails the next request instead.
        """
        with work_errors(self.hailo, "generation"):
            self.vlm.clear_context()
            completion = self.vlm.generate(prompt=prompt, frames=frames, **kwargs)
        stops = StopStringFilter(stop)
        closing = False
        try:
            with completion:
                try:
                    yield from self._read(completion, stops, kwargs["max_generated_tokens"], prompt_tokens)
                except GeneratorExit:
                    closing = True
                    raise
        except self.hailo.errors as exc:  # raw native on every release: the completion's release is unwrapped
            self.failure = f"the Hailo device failed to release a generation: {described(self.hailo, exc)}"
            if closing:
                log.error("%s", self.failure)
                return
            raise DeviceFailedError(self.failure) from exc

    def _read(
        self, completion: Any, stops: StopStringFilter, budget: int, prompt_tokens: int
    ) -> Iterator[GenerationEvent]:
        """Tokens until the device ends the generation or a stop string appears.

        After max_generated_tokens the device appends its recovery sequence (e.g. the end token),
        not counted against the limit: what is read beyond `budget` is neither shown nor counted.
        """
        timeout_ms = int(self.settings.read_timeout_s * 1000)
        generated = reads = 0
        with work_errors(self.hailo, "generation"):
            while (status := _status(completion)) == GENERATING and reads < budget + RECOVERY_READS:
                piece = completion.read(timeout_ms)
                reads += 1
                if generated == budget:
                    continue
                generated += 1
                text = stops.push(SPECIAL_TOKEN.sub("", piece))
                yield Token(text, NO_TOKEN_ID)
                if stops.stopped:
                    yield Finish("stop", prompt_tokens, generated)
                    return
        if held := stops.flush():
            yield Token(held, NO_TOKEN_ID)
        length = status == MAX_TOKENS_REACHED or generated == budget
        yield Finish("length" if length else "stop", prompt_tokens, generated)
