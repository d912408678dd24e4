"""The body of OpenAI's POST /v1/chat/completions, declared once: validation and the published schema.

Unknown fields are ignored, as OpenAI's own server does. `tools` are accepted (the model answers in
text and calls none), so a `tool_choice` that requires a call is refused. `response_format` is parsed
and its JSON Schema validated; making the output follow it is the structured-output work (#15).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Field, Tag, ValidationInfo, model_validator

from api.clip_input import VideoFramesPart, VideoURLPart, clip_ref
from api.conversation import Conversation, Part, Turn, check_turns
from api.errors import APIError
from api.image_input import ImageURLField, url_ref
from api.schema import ANY_OBJECT, Body, JsonSchema, by_field, json_kind, limits, schema_text, tag_by
from npu_worker.backend import Role, SamplingParams
from npu_worker.config import InferenceConfig

ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOP_SEQUENCES = 4

Temperature = Annotated[float, Field(ge=0, le=2, description="0..2; 0 = greedy")]
TopP = Annotated[float, Field(ge=0, le=1, description="Nucleus sampling mass")]
Penalty = Annotated[float, Field(ge=-2, le=2, description="OpenAI semantics: additive on generated tokens")]
REPETITION = "vLLM's extension: multiplicative over the prompt and answer's tokens; 1 = off"
MaxTokens = Annotated[int, Field(ge=1, description="Capped by the room left in the context window")]


class ChatTextPart(Body):
    type: Literal["text"]
    text: str


class ChatImagePart(Body):
    type: Literal["image_url", "image"]
    image_url: ImageURLField


PART_TYPES = {
    "text": "~text",
    "image_url": "~image",
    "image": "~image",
    "video": "~video",
    "video_url": "~file",
}
ContentPart = Annotated[
    Annotated[ChatTextPart, Tag("~text")]
    | Annotated[ChatImagePart, Tag("~image")]
    | Annotated[VideoFramesPart, Tag("~video")]
    | Annotated[VideoURLPart, Tag("~file")],
    tag_by(
        by_field("type", PART_TYPES),
        "must be 'text', 'image_url', 'image', 'video' or 'video_url' (the content part type)",
        field="type",
    ),
]
Content = Annotated[
    Annotated[str, Tag("~string")] | Annotated[list[ContentPart], Field(min_length=1), Tag("~array")],
    tag_by(json_kind, "must be a string or a non-empty list of content parts"),
]


class ChatMessage(Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: Content
    name: str | None = None


StopString = Annotated[str, Field(min_length=1)]
Stop = Annotated[
    Annotated[StopString, Tag("~string")]
    | Annotated[list[StopString], Field(max_length=MAX_STOP_SEQUENCES), Tag("~array")],
    tag_by(
        json_kind, f"must be a non-empty string or a list of up to {MAX_STOP_SEQUENCES} non-empty strings"
    ),
]


class StreamOptions(Body):
    include_usage: bool | None = None


class FunctionDefinition(Body):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(Body):
    """Accepted so that clients which always send their tools work; the model calls none."""

    type: str
    function: FunctionDefinition | None = None


class NamedToolChoice(Body):
    type: str
    function: dict[str, Any] | None = None


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("~string")]
    | Annotated[NamedToolChoice, Tag("~object")],
    tag_by(json_kind, "must be 'none', 'auto', 'required' or an object naming a tool"),
]


class JsonSchemaFormat(Body):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    schema_: JsonSchema | None = Field(None, alias="schema")
    strict: bool | None = None


class PlainFormat(Body):
    type: Literal["text", "json_object"]


class JsonSchemaResponseFormat(Body):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


def output_schema(fmt: PlainFormat | JsonSchemaFormat | JsonSchemaResponseFormat | None) -> str:
    """The schema the answer is held to, for the worker ("" = free text): json_object is any object,
    json_schema its schema (any object when it gives none)."""
    if isinstance(fmt, JsonSchemaResponseFormat):
        fmt = fmt.json_schema
    if fmt is None or (isinstance(fmt, PlainFormat) and fmt.type == "text"):
        return ""
    if isinstance(fmt, JsonSchemaFormat) and fmt.schema_ is not None:
        return schema_text(fmt.schema_)
    return schema_text(ANY_OBJECT)


FORMAT_TYPES = {"text": "~plain", "json_object": "~plain", "json_schema": "~json_schema"}
ResponseFormat = Annotated[
    Annotated[PlainFormat, Tag("~plain")] | Annotated[JsonSchemaResponseFormat, Tag("~json_schema")],
    tag_by(by_field("type", FORMAT_TYPES), "must be 'text', 'json_object' or 'json_schema'", field="type"),
]


def refuse_required_tool_call(choice: object, param: str) -> None:
    """A request that requires a tool call the model cannot make: a clear 400, never plain text."""
    if choice is None or choice in ("none", "auto"):
        return
    raise APIError(
        400,
        "this model answers in text and cannot call tools; use tool_choice 'auto' or 'none'",
        "invalid_request",
        param,
    )


class ChatCompletionRequest(Body):
    """OpenAI's chat completion request (the fields hailo-vision reads; others are ignored)."""

    model: str | None = Field(None, description="A chat model of /v1/models; default: model.name")
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = Field(None, description="Wins over max_tokens")
    min_tokens: Annotated[int, Field(ge=0, description="vLLM's extension")] | None = None
    stop: Stop | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, Field(gt=0, description=REPETITION)] | None = None
    n: Literal[1] | None = Field(None, description="Only 1 is supported")
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    tools: list[ChatTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = Field(None, description="Structured output: the answer meets it")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ChatCompletionRequest:
        check_turns(self.turns, "messages", limits(info))
        refuse_required_tool_call(self.tool_choice, "tool_choice")
        return self

    @functools.cached_property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(
            Turn(ROLES[m.role], _parts(m.content, f"messages[{i}].content"), f"messages[{i}].content")
            for i, m in enumerate(self.messages)
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def to_conversation(self, defaults: InferenceConfig) -> Conversation:
        stop: tuple[str, ...] = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        params = SamplingParams(
            max_tokens=self.max_completion_tokens or self.max_tokens or defaults.max_tokens,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            seed=self.seed,
            frequency_penalty=self.frequency_penalty or 0.0,
            presence_penalty=self.presence_penalty or 0.0,
            repeat_penalty=self.repetition_penalty or 1.0,
            repeat_last_n=-1,
            stop=stop,
            min_tokens=self.min_tokens or 0,
            json_schema=output_schema(self.response_format),
        )
        return Conversation(self.model, self.turns, params)


def _parts(
    content: str | list[ChatTextPart | ChatImagePart | VideoFramesPart | VideoURLPart], param: str
) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (content,)
    return tuple(_part(part, f"{param}[{j}]") for j, part in enumerate(content))


def _part(part: ChatTextPart | ChatImagePart | VideoFramesPart | VideoURLPart, param: str) -> Part:
    if isinstance(part, ChatTextPart):
        return part.text
    if isinstance(part, ChatImagePart):
        return url_ref(part.image_url, f"{param}.image_url")
    return clip_ref(part, param)
