"""The bodies of Ollama's API (/api/chat, /api/generate, /api/embed, /api/show, /api/pull), declared once.

Ollama's own quirks and those of the clients that speak it are part of the declaration: `options`
may hold `system`, `format`, `keep_alive` and `think` (n8n, Open WebUI move them there); `/api/chat`
may carry a top-level `system`, `images`, an empty `prompt` and `num_predict` (LLM Vision, Open WebUI);
roles are case-insensitive, as in Ollama. `format` is parsed and validated; making the output follow
it is the structured-output work (#15). Ollama has no video input; two extensions carry clips: a
message whose content says [video] has its images taken as the frames of one clip, placed there
(this works through Ollama's own clients, which send only `images`), and a message's `videos` holds
clips, each a list of frames (raw base64 or data URLs) or one video file (base64 or a data URL),
placed before the message's images and text.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.clip_request import check_embedding_inputs, embedding_inputs
from api.conversation import ClipRef, ImageRef, Part, Turn, check_turns
from api.errors import APIError
from api.keep_alive import DURATION, KeepAlive, duration_seconds
from api.schema import ANY_JSON, Body, JsonSchema, NonBlank, json_kind, limits, schema_text, tag_by
from npu_worker.backend import SamplingParams
from npu_worker.config import InferenceConfig

IMAGE_MARKER = "[img]"  # Ollama puts a message's images, in order, where its content says [img]
VIDEO_MARKER = "[video]"  # here: a message's images are the frames of one clip, placed at the marker

OllamaImage = Annotated[NonBlank, Field(description="Raw base64 (Ollama's form) or a data URL")]
OllamaFormat = Annotated[
    Annotated[Literal["", "json"], Tag("~string")] | Annotated[JsonSchema, Tag("~object")],
    tag_by(json_kind, "must be 'json' or a JSON Schema object"),
]
Think = Annotated[
    Annotated[bool, Tag("~boolean")] | Annotated[Literal["high", "medium", "low", "max"], Tag("~string")],
    tag_by(json_kind, "must be true, false, 'high', 'medium', 'low' or 'max'"),
]
KEEP_ALIVE_FORMS = "seconds (-1 = forever, 0 = unload) or a duration such as '5m' or '1h30m'"


def _duration(text: str) -> str:
    if not re.match(DURATION, text):
        raise PydanticCustomError("duration", f"must be {KEEP_ALIVE_FORMS}")
    return text


KeepAliveInput = Annotated[
    Annotated[float, Tag("~number")]
    | Annotated[
        str,
        AfterValidator(_duration),
        WithJsonSchema({"type": "string", "pattern": DURATION}),
        Tag("~string"),
    ],
    tag_by(json_kind, f"must be {KEEP_ALIVE_FORMS}"),
]
Stop = Annotated[
    Annotated[str, Tag("~string")] | Annotated[list[str], Tag("~array")],
    tag_by(json_kind, "must be a string or a list of strings"),
]
Role = Annotated[
    Literal["system", "user", "assistant"], BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)
]


NOT_APPLIED = (
    "Accepted, not applied: llama.cpp's additive penalties count the prompt, the CPU sampler's do not"
)


class OllamaOptions(Body):
    """Ollama's model options. The first group is applied (repeat_penalty as llama.cpp does it); the
    rest is accepted and not applied (no backend here has it as llama.cpp means it, or it is the
    service's: llama.cpp's additive penalties count the prompt, OpenAI's do not); unknown keys are
    ignored (Frigate sends presence_penalty 0.3 with every request)."""

    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0, description="0 = no top-k cut")] | None = None
    seed: int | None = Field(None, description="Negative = random")
    num_predict: int | None = Field(None, description="Tokens to generate at most; negative = until done")
    stop: Stop | None = None
    frequency_penalty: float | None = Field(None, description=NOT_APPLIED)
    presence_penalty: float | None = Field(None, description=NOT_APPLIED)
    repeat_penalty: (
        Annotated[float, Field(gt=0, description="Multiplicative; 1 = off (the default here)")] | None
    ) = None
    repeat_last_n: (
        Annotated[int, Field(ge=-1, description="Tokens repeat_penalty looks back; -1 = all")] | None
    ) = None
    num_ctx: int | None = Field(None, description="Accepted, not applied: the model's window is used")
    min_p: float | None = None
    typical_p: float | None = None
    num_keep: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    num_thread: int | None = None
    low_vram: bool | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    # request fields that n8n and Open WebUI put among the options; the top-level field wins
    system: str | None = None
    format: OllamaFormat | None = None
    keep_alive: KeepAliveInput | None = None
    think: Think | None = None


OllamaClip = Annotated[
    Annotated[list[OllamaImage], Field(min_length=1), Tag("~array")] | Annotated[OllamaImage, Tag("~string")],
    tag_by(json_kind, "must be a list of frames (base64) or a video file (base64 or a data URL)"),
]


class OllamaMessage(Body):
    role: Role
    content: str = ""
    images: list[OllamaImage] | None = None
    videos: list[OllamaClip] | None = Field(None, description="Clips: frame lists or video files")

    def parts(self, param: str, images: list[str] | None = None, images_param: str = "") -> tuple[Part, ...]:
        """The message's clips, then its images (or `images`) placed at [img] markers, and its text."""
        clips = tuple(_clip(clip, f"{param}.videos[{i}]") for i, clip in enumerate(self.videos or ()))
        if images is None:
            images, images_param = self.images or [], f"{param}.images"
        if VIDEO_MARKER in self.content and images:
            before, after = self.content.split(VIDEO_MARKER, 1)
            frames = _clip(images, images_param)
            return clips + tuple(p for p in (before, frames, after) if p != "")
        return clips + with_images(self.content, images, images_param)


def _clip(clip: list[str] | str, param: str) -> ClipRef:
    if isinstance(clip, str):
        return ClipRef(param, file=ImageRef(clip, param))
    return ClipRef(param, frames=tuple(ImageRef(frame, f"{param}[{i}]") for i, frame in enumerate(clip)))


def seconds(keep_alive: float | str | None) -> KeepAlive:
    """keep_alive as seconds: None = server default, < 0 = forever, 0 = unload now."""
    if keep_alive is None or isinstance(keep_alive, float | int):
        return keep_alive
    return duration_seconds(keep_alive)


def with_images(content: str, images: list[str], param: str) -> tuple[Part, ...]:
    """Ollama's placement: each image where the content says [img], in order; the rest before the text."""
    refs = [ImageRef(image, f"{param}[{i}]") for i, image in enumerate(images)]
    pieces = content.split(IMAGE_MARKER, len(refs)) if IMAGE_MARKER in content else [content]
    placed = len(pieces) - 1
    parts: list[Part] = [*refs[placed:], pieces[0]]
    for ref, piece in zip(refs[:placed], pieces[1:], strict=True):
        parts += [ref, piece]
    return tuple(p for p in parts if p != "")


class OllamaGeneration(Body):
    """What /api/chat and /api/generate share."""

    model: NonBlank
    stream: bool | None = Field(None, description="Default true: NDJSON chunks")
    format: OllamaFormat | None = Field(None, description="Structured output: 'json' or a JSON Schema")
    keep_alive: KeepAliveInput | None = None
    options: OllamaOptions | None = None
    think: Think | None = Field(None, description="Only false: the model does not think")
    system: str | None = None
    images: list[OllamaImage] | None = None
    num_predict: int | None = Field(None, description="As options.num_predict (Open WebUI sends it here)")
    truncate: bool | None = None
    shift: bool | None = None

    def _option(self, name: str) -> Any:
        """A request field, else the same field among the options."""
        value = getattr(self, name)
        return getattr(self.options, name, None) if value is None else value

    @model_validator(mode="after")
    def _no_thinking(self) -> OllamaGeneration:
        if self._option("think") not in (None, False):
            raise APIError(400, f'"{self.model}" does not support thinking', "invalid_request", "think")
        return self

    @property
    def streamed(self) -> bool:
        return self.stream is not False

    @property
    def keep_alive_seconds(self) -> KeepAlive:
        return seconds(self._option("keep_alive"))

    @property
    def system_prompt(self) -> str | None:
        return self._option("system")

    def sampling(self, defaults: InferenceConfig, context_length: int | None) -> SamplingParams:
        """Sampling from the options, the service's defaults for the rest. num_predict < 0: until the
        model stops or the context window is full."""
        options = self.options or OllamaOptions()
        predict = self.num_predict if self.num_predict is not None else options.num_predict
        if predict == 0:
            raise APIError(
                400,
                "'num_predict' must be at least 1, or negative for no limit",
                "invalid_request",
                "num_predict",
            )
        if predict is not None and predict < 0:
            predict = context_length or defaults.max_tokens
        stop = options.stop
        fmt = self._option("format")
        schema = ANY_JSON if fmt == "json" else fmt or None
        return SamplingParams(
            max_tokens=predict or defaults.max_tokens,
            temperature=defaults.temperature if options.temperature is None else options.temperature,
            top_p=defaults.top_p if options.top_p is None else options.top_p,
            top_k=options.top_k or 0,
            seed=options.seed if options.seed is not None and options.seed >= 0 else None,
            repeat_penalty=1.0 if options.repeat_penalty is None else options.repeat_penalty,
            repeat_last_n=64 if options.repeat_last_n is None else options.repeat_last_n,
            stop=tuple(s for s in ([stop] if isinstance(stop, str) else stop or ()) if s),
            json_schema=schema_text(schema),
        )


EmptyPrompt = Annotated[
    Annotated[str, Field(max_length=0), Tag("~string")]
    | Annotated[list[Any], Field(max_length=0), Tag("~array")],
    tag_by(json_kind, "must be empty: /api/chat reads 'messages'"),
]


class OllamaChatRequest(OllamaGeneration):
    """POST /api/chat."""

    messages: list[OllamaMessage] = Field(default_factory=list, description="None: load or unload")
    tools: list[dict[str, Any]] | None = Field(None, description="Accepted; the model calls no tools")
    prompt: EmptyPrompt | None = Field(None, description="Ignored; must be empty (LLM Vision sends [])")

    @property
    def has_input(self) -> bool:
        """False: a request to load (or, with keep_alive 0, unload) the model."""
        return bool(self.messages)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> OllamaChatRequest:
        if self.messages:
            check_turns(self.turns, "messages", limits(info))
        return self

    @functools.cached_property
    def turns(self) -> tuple[Turn, ...]:
        """The messages; the top-level `system` leads when no message is one, and top-level `images`
        join the last user message when no message has images (LLM Vision sends them in both places)."""
        turns = [
            Turn(m.role, m.parts(f"messages[{i}]"), f"messages[{i}]") for i, m in enumerate(self.messages)
        ]
        if self.images and not any(m.images for m in self.messages):
            last = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
            if last is not None:
                parts = self.messages[last].parts(f"messages[{last}]", self.images, "images")
                turns[last] = Turn("user", parts, turns[last].param)
        system = self.system_prompt
        if system and not any(t.role == "system" for t in turns):
            turns.insert(0, Turn("system", (system,), "system"))
        return tuple(turns)


class OllamaGenerateRequest(OllamaGeneration):
    """POST /api/generate."""

    prompt: str = Field("", description="Empty: load the model, or unload it with keep_alive 0")
    suffix: str | None = Field(None, description="Not supported (no fill-in-the-middle)")
    template: str | None = Field(None, description="Not supported: the model's own template is used")
    raw: bool | None = Field(None, description="Not supported")
    context: list[int] | None = Field(None, description="Not supported: the API is stateless")

    @property
    def has_input(self) -> bool:
        """False: a request to load (or, with keep_alive 0, unload) the model."""
        return bool(self.prompt)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> OllamaGenerateRequest:
        refused = {
            "suffix": f'"{self.model}" does not support insert',
            "template": "'template' is not supported: the model's own chat template is used",
            "raw": "'raw' is not supported: the model's own chat template is always applied",
            "context": "'context' is not supported: the API is stateless; send the history to /api/chat",
        }
        for name, message in refused.items():
            if getattr(self, name):
                raise APIError(400, message, "invalid_request", name)
        if self.prompt:
            check_turns(self.turns, "prompt", limits(info))
        return self

    @functools.cached_property
    def turns(self) -> tuple[Turn, ...]:
        user = Turn("user", with_images(self.prompt, self.images or [], "images"), "prompt")
        system = self.system_prompt
        return (Turn("system", (system,), "system"), user) if system else (user,)


class EmbedImage(Body):
    image: OllamaImage


EmbedInput = Annotated[
    Annotated[NonBlank, Tag("~string")] | Annotated[EmbedImage, Tag("~object")],
    tag_by(json_kind, "must be a text or {'image': base64}"),
]


class OllamaEmbedRequest(Body):
    """POST /api/embed, served by CLIP: texts, and images as {"image": base64} (Ollama 0.40's form)
    or as data: URL strings (as /v1/embeddings takes them)."""

    model: NonBlank
    input: Annotated[
        Annotated[NonBlank, Tag("~string")] | Annotated[list[EmbedInput], Field(min_length=1), Tag("~array")],
        tag_by(json_kind, "must be a string or a non-empty list of texts and {'image': base64} objects"),
    ]
    truncate: bool | None = None
    dimensions: None = Field(None, description="Not supported: embeddings have the model's own size")
    keep_alive: KeepAliveInput | None = None
    options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> OllamaEmbedRequest:
        inputs = self.inputs
        params = ["input"] if isinstance(self.input, str) else [f"input[{i}]" for i in range(len(inputs))]
        check_embedding_inputs(inputs, params, "input", limits(info).clip)
        return self

    @functools.cached_property
    def inputs(self) -> tuple[str | ImageRef, ...]:
        """Texts, and images as references: {"image": ...} objects, and strings that are data: URLs."""
        if isinstance(self.input, str):
            return embedding_inputs([(self.input, "input")])
        return tuple(
            ImageRef(item.image, f"input[{i}].image")
            if isinstance(item, EmbedImage)
            else embedding_inputs([(item, f"input[{i}]")])[0]
            for i, item in enumerate(self.input)
        )


class OllamaEmbeddingsRequest(Body):
    """POST /api/embeddings, Ollama's older form (its client's deprecated `embeddings()`): one prompt,
    one vector; an empty prompt, none (Ollama's answer while it only loads the model)."""

    model: NonBlank
    prompt: str = Field("", description="A text, or an image as a data: URL; empty: no embedding")
    keep_alive: KeepAliveInput | None = None
    options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> OllamaEmbeddingsRequest:
        check_embedding_inputs(self.inputs, ["prompt"] * len(self.inputs), "prompt", limits(info).clip)
        return self

    @functools.cached_property
    def inputs(self) -> tuple[str | ImageRef, ...]:
        return embedding_inputs([(self.prompt, "prompt")]) if self.prompt else ()


class OllamaModelRequest(Body):
    """POST /api/show and /api/pull: the model, as `model` or Ollama's older `name`."""

    model: NonBlank | None = None
    name: NonBlank | None = None
    stream: bool | None = None
    verbose: bool | None = None
    insecure: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> OllamaModelRequest:
        if not (self.model or self.name):
            raise APIError(400, "model is required", "invalid_request", "model")
        return self

    @property
    def requested(self) -> str:
        return self.model or self.name or ""
