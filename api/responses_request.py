"""The body of OpenAI's POST /v1/responses, stateless (as Ollama, vLLM and LM Studio serve it).

`input` is a string or message items (roles user, developer, system and assistant; parts input_text,
input_image, and output_text for earlier answers). `instructions` leads as the system message.
`text.format` is parsed and its JSON Schema validated (Home Assistant puts `strict` inside the schema);
making the output follow it is the structured-output work (#15). Fields that only matter to a server
that stores responses or runs tools (`store`, `include`, `reasoning`, ...) are accepted and ignored;
those that need stored state (`previous_response_id`, `conversation`, `background`) are refused.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import Field, Tag, ValidationInfo, model_validator

from api.chat_request import (
    FORMAT_TYPES,
    ROLES,
    JsonSchemaFormat,
    MaxTokens,
    PlainFormat,
    Temperature,
    TopP,
    output_schema,
    refuse_required_tool_call,
)
from api.conversation import Conversation, ImageRef, Part, Turn, check_turns
from api.schema import Body, JsonSchema, NonBlank, by_field, json_kind, limits, tag_by
from npu_worker.backend import SamplingParams
from npu_worker.config import InferenceConfig

STATELESS = "this server is stateless: send the whole conversation in 'input'"


class InputText(Body):
    type: Literal["input_text"]
    text: str


class InputImage(Body):
    type: Literal["input_image"]
    image_url: NonBlank = Field(description="A data URL, or an http(s) URL when allowed")
    detail: str | None = Field(None, description="Accepted and ignored")


class OutputText(Body):
    """An earlier answer, sent back as history."""

    type: Literal["output_text"]
    text: str


InputContent = Annotated[
    Annotated[InputText, Tag("~input_text")]
    | Annotated[InputImage, Tag("~input_image")]
    | Annotated[OutputText, Tag("~output_text")],
    tag_by(
        by_field("type", {t: f"~{t}" for t in ("input_text", "input_image", "output_text")}),
        "must be 'input_text', 'input_image' or 'output_text' (files and audio are not supported)",
        field="type",
    ),
]


class InputMessage(Body):
    type: Literal["message"] | None = None
    role: Literal["user", "developer", "system", "assistant"]
    content: Annotated[
        Annotated[str, Tag("~string")] | Annotated[list[InputContent], Tag("~array")],
        tag_by(json_kind, "must be a string or a list of content parts"),
    ]


InputItem = Annotated[
    Annotated[InputMessage, Tag("~message")],
    tag_by(
        by_field("type", {"message": "~message"}, default="message"),
        "must be a message: the model calls no tools, and " + STATELESS,
        field="type",
    ),
]


class JsonSchemaTextFormat(JsonSchemaFormat):
    """Chat's json_schema format, flat: `{"type": "json_schema", "name", "schema", "strict"?}`."""

    type: Literal["json_schema"]
    schema_: JsonSchema = Field(alias="schema")


TextFormat = Annotated[
    Annotated[PlainFormat, Tag("~plain")] | Annotated[JsonSchemaTextFormat, Tag("~json_schema")],
    tag_by(by_field("type", FORMAT_TYPES), "must be 'text', 'json_object' or 'json_schema'", field="type"),
]


class TextConfig(Body):
    format: TextFormat | None = Field(None, description="Structured output: the answer meets it")
    verbosity: str | None = Field(None, description="Accepted and ignored")


class ResponsesToolChoice(Body):
    type: str


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("~string")]
    | Annotated[ResponsesToolChoice, Tag("~object")],
    tag_by(json_kind, "must be 'none', 'auto', 'required' or an object naming a tool"),
]


class ResponsesRequest(Body):
    """OpenAI's Responses request (the fields hailo-vision reads; others are ignored)."""

    model: str | None = Field(None, description="A chat model of /v1/models; default: model.name")
    input: Annotated[
        Annotated[str, Tag("~string")] | Annotated[list[InputItem], Field(min_length=1), Tag("~array")],
        tag_by(json_kind, "must be a string or a non-empty list of messages"),
    ]
    instructions: str | None = None
    max_output_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool | None = None
    text: TextConfig | None = None
    tools: list[dict[str, Any]] | None = Field(None, description="Accepted; the model calls no tools")
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = Field(None, description="Accepted and ignored: nothing is stored")
    user: str | None = None
    include: list[str] | None = Field(None, description="Accepted and ignored")
    reasoning: dict[str, Any] | None = Field(None, description="Accepted and ignored")
    prompt_cache_retention: str | None = Field(None, description="Accepted and ignored")
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    previous_response_id: None = Field(None, description="Not supported: " + STATELESS)
    conversation: None = Field(None, description="Not supported: " + STATELESS)
    background: Literal[False] | None = Field(None, description="Only false")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ResponsesRequest:
        check_turns(self.turns, "input", limits(info))
        refuse_required_tool_call(self.tool_choice, "tool_choice")
        return self

    @functools.cached_property
    def turns(self) -> tuple[Turn, ...]:
        turns = [Turn("system", (self.instructions,), "instructions")] if self.instructions else []
        if isinstance(self.input, str):
            return (*turns, Turn("user", (self.input,), "input"))
        for i, item in enumerate(self.input):
            where = f"input[{i}].content"
            turns.append(Turn(ROLES[item.role], _parts(item.content, where), where))
        return tuple(turns)

    def to_conversation(self, defaults: InferenceConfig) -> Conversation:
        params = SamplingParams(
            max_tokens=self.max_output_tokens or defaults.max_tokens,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            json_schema=output_schema(self.text.format if self.text is not None else None),
        )
        return Conversation(self.model, self.turns, params)


def _parts(content: str | list[InputText | InputImage | OutputText], where: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (content,)
    return tuple(
        ImageRef(part.image_url, f"{where}[{j}].image_url") if isinstance(part, InputImage) else part.text
        for j, part in enumerate(content)
    )
