"""Qwen2-VL on the Hailo-10H through hailo_platform.genai.VLM: prompts, frames, clips, counting, streaming.

A request that starts clean clears the device context and goes to the device as its message dicts
(one {"type": "image"} per frame, one {"type": "video"} per clip; the HEF's chat template is applied on
the device); one that continues the conversation the context holds sends only its new part
(`vlm_context`). Frames, a clip's included, are squashed to the HEF's frame shape. Clips use
VLM.generate's `videos` (HailoRT 5.2.0+), or go as separate frames with hailo.clips_as_frames. Tokens
are read from the generation's context manager; leaving it (the engine closes this generator on abort
or timeout) releases the completion, which aborts the device's work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npu_worker.backend import (
    ContextLengthError,
    DeviceFailedError,
    Finish,
    GenerationEvent,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelInfo,
    ModelLoadError,
    Part,
    SamplingParams,
    TextPart,
    Token,
    VideoPart,
)
from npu_worker.chat_template import ChatTemplate, template_messages, validate_messages
from npu_worker.config import HailoConfig
from npu_worker.hailo.device import described, release_quietly, work_errors
from npu_worker.hailo.failures import Call
from npu_worker.hailo.features import HailoFeatures
from npu_worker.hailo.load_failures import LoadFailures, LoadSite
from npu_worker.hailo.runtime import HailoModules
from npu_worker.hailo.sampling import check_supported, generate_kwargs
from npu_worker.hailo.vlm_context import ContextBook, Held, Media, Plan
from npu_worker.stop_strings import StopStringFilter

log = logging.getLogger(__name__)

BACKEND_NAME = "hailort"
FALLBACK_CONTEXT = 2048  # the context the published Hailo-10H GenAI HEFs are compiled for
MERGED_PATCH = 28  # Qwen2-VL: 14-pixel patches, 2x2 merged into one image token
IMAGE_PAD = "<|image_pad|>"  # Qwen2-VL's placeholder; the device puts the frame's tokens there
VIDEO_PAD = "<|video_pad|>"  # a clip's placeholder
SPECIAL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]+\|>")
NO_TOKEN_ID = -1  # the device streams text, not ids
RECOVERY_READS = 16  # most pieces read after max_generated_tokens before giving up on the device
GENERATING = "GENERATING"
MAX_TOKENS_REACHED = "MAX_TOKENS_REACHED"


def _status(completion: Any) -> str:
    status = completion.generation_status
    return str(getattr(status, "name", status)).rsplit(".", 1)[-1]


def _as_frames(part: Part) -> tuple[Part, ...]:
    return tuple(ImagePart(frame) for frame in part.frames) if isinstance(part, VideoPart) else (part,)


@dataclass(frozen=True)
class Start:
    """How one generation starts: the plan for the device context, the prompt to send, and the whole
    prompt (rendered text, media, tokens) the context will hold."""

    plan: Plan
    prompt: str | list[dict[str, Any]]
    prompt_held: Held

    @property
    def cached_tokens(self) -> int:
        return self.plan.held.tokens if self.plan.held is not None else 0


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
        kept_contexts: int = 0,
    ) -> None:
        self.hailo = hailo
        self.settings = settings
        self.features = features
        self.book = ContextBook(kept_contexts, settings.context_save_min_tokens, features.save_context)
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
        if hasattr(self, "book"):
            self.book.forget()
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
        messages = self._clip_form(messages)
        return self._count(messages, self.template.render(messages))

    def _count(self, messages: Sequence[Message], text: str) -> int:
        """count_tokens of messages already in their clip form, rendered as `text`."""
        texts = [p.text for m in messages for p in m.parts if isinstance(p, TextPart)]
        if any(pad in text for pad in (IMAGE_PAD, VIDEO_PAD) for text in texts):
            # The device would find more placeholders than frames or clips and fail mid-generation.
            raise InvalidRequestError(
                f"message text must not contain the image or video tokens {IMAGE_PAD}, {VIDEO_PAD}",
                "messages",
            )
        images = sum(len(m.images) for m in messages)
        clip_frames = sum(-(-len(clip) // 2) for m in messages for clip in m.videos)  # pairs: vlm_server.cpp
        with work_errors(self.hailo, "tokenization"):
            text_tokens = len(self.vlm.tokenize(text.replace(IMAGE_PAD, "").replace(VIDEO_PAD, "")))
        return text_tokens + (images + clip_frames) * self.tokens_per_frame

    def _clip_form(self, messages: Sequence[Message]) -> Sequence[Message]:
        """The messages as the device takes them: clips as `videos`, or as frames when configured."""
        if not any(m.videos for m in messages):
            return messages
        if self.settings.clips_as_frames:
            return [Message(m.role, tuple(q for p in m.parts for q in _as_frames(p))) for m in messages]
        if not self.features.videos:
            raise InvalidRequestError(
                f"clips need HailoRT 5.2.0 or newer (VLM.generate's videos argument); this is HailoRT "
                f"{self.features.version}. Set hailo.clips_as_frames: true to send a clip's frames as images",
                "messages",
            )
        return messages

    def generate(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[GenerationEvent]:
        """Validate now (before any event), then stream from the device."""
        if self.failure:
            raise DeviceFailedError(self.failure)
        validate_messages(messages)
        check_supported(params)
        if params.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be >= 1, got {params.max_tokens}", "max_tokens")
        messages = self._clip_form(messages)
        text = self.template.render(messages)
        prompt_tokens = self._count(messages, text)
        if prompt_tokens + 1 > self.context_length:
            raise ContextLengthError(prompt_tokens, self.context_length)
        budget = min(params.max_tokens, self.context_length - prompt_tokens)
        media = Media.of(messages)
        plan = self.book.plan(text, media)
        kept = plan.held.media if plan.held is not None else Media()  # on the device already: not sent
        new_images = [image for m in messages for image in m.images][len(kept.images) :]
        new_clips = [clip for m in messages for clip in m.videos][len(kept.clips) :]
        frames = [self.frame(image) for image in new_images]
        clips = [[self.frame(f) for f in clip] for clip in new_clips]
        kwargs = generate_kwargs(params, self.settings.default_top_k, budget)
        if clips:
            kwargs["videos"] = clips
        prompt: str | list[dict[str, Any]] = template_messages(messages)
        if plan.held is not None:
            prompt = text[len(plan.held.text) :]
        start = Start(plan, prompt, Held(text, media, prompt_tokens))
        return self._stream(start, frames, kwargs, params.stop)

    def _begin(self, start: Start, frames: list[np.ndarray], kwargs: dict[str, Any]) -> Any:
        """Save, load or clear the device context as planned, then start the generation."""
        plan = start.plan
        if plan.save is not None:
            self.book.saved(plan.save, bytes(self.vlm.save_context()))
        if plan.blob is not None:
            self.vlm.load_context(plan.blob)
        elif plan.held is None:
            self.vlm.clear_context()
        self.book.held = None  # until this generation ends cleanly
        try:
            return self.vlm.generate(prompt=start.prompt, frames=frames, **kwargs)
        except self.hailo.errors as exc:
            if "videos" not in kwargs:
                raise
            # vlm_server.cpp (5.2.0) refuses video frames when the frame encoder has one input
            raise InvalidRequestError(
                f"the Hailo device refused the clip ({described(self.hailo, exc)}): this model's HEF "
                "takes single frames, not clips; set hailo.clips_as_frames: true",
                "messages",
            ) from exc

    def _stream(
        self, start: Start, frames: list[np.ndarray], kwargs: dict[str, Any], stop: Sequence[str]
    ) -> Iterator[GenerationEvent]:
        """Start the device's generation, read it inside its context, always leave the context.

        A failure to release the completion while the engine closes this generator must not raise
        (close() would pass it to the engine); it is remembered and fails the next request instead.
        """
        with work_errors(self.hailo, "generation"):
            completion = self._begin(start, frames, kwargs)
        stops = StopStringFilter(stop)
        closing = False
        try:
            with completion:
                try:
                    yield from self._read(completion, stops, kwargs["max_generated_tokens"], start)
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
        self, completion: Any, stops: StopStringFilter, budget: int, start: Start
    ) -> Iterator[GenerationEvent]:
        """Tokens until the device ends the generation or a stop string appears.

        After max_generated_tokens the device appends its recovery sequence (e.g. the end token),
        not counted against the limit: what is read beyond `budget` is neither shown nor counted.
        When the device ended the generation itself, the context holds the prompt and the answer.
        """
        timeout_ms = int(self.settings.read_timeout_s * 1000)
        prompt_tokens, cached = start.prompt_held.tokens, start.cached_tokens
        generated = reads = 0
        answer: list[str] = []
        with work_errors(self.hailo, "generation"):
            while (status := _status(completion)) == GENERATING and reads < budget + RECOVERY_READS:
                piece = SPECIAL_TOKEN.sub("", completion.read(timeout_ms))
                reads += 1
                answer.append(piece)
                if generated == budget:
                    continue
                generated += 1
                text = stops.push(piece)
                yield Token(text, NO_TOKEN_ID)
                if stops.stopped:
                    yield Finish("stop", prompt_tokens, generated, cached)
                    return
        if status != GENERATING:
            held = start.prompt_held
            self.book.held = Held(held.text + "".join(answer), held.media, held.tokens + generated)
        if rest := stops.flush():
            yield Token(rest, NO_TOKEN_ID)
        length = status == MAX_TOKENS_REACHED or generated == budget
        yield Finish("length" if length else "stop", prompt_tokens, generated, cached)
