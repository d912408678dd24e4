"""What every request body is declared with: one pydantic base, tagged unions, and one error path.

Each body is a `Body` subclass: strict JSON types (no "1" for 1, no 1 for true), unknown fields
ignored (as OpenAI's and Ollama's servers do), no NaN or infinity. The same declaration validates the
request and is published in the OpenAPI document. A pydantic error becomes one `APIError` 400 whose
`param` names the first bad field in the request's own terms (`messages[0].content[1].image_url`).

Every union is tagged (`tag_by`): a callable picks exactly one branch, so an error names that branch's
field, never a guess per branch. Tags start with `~` and are dropped from `param`. Checks that need the
configuration (list limits) or span fields run in the body's `model_validator(mode="after")` and raise
`APIError` directly; pydantic lets that through unchanged. Validation does no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from llguidance import LLMatcher
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from api.errors import APIError
from npu_worker.config import Config

TAG = "~"  # union branch names start with it; they are not fields
TAG_FIELD_ERROR = "tag_field"  # a union's tag field holds no known value: `param` names that field


class Body(BaseModel):
    """A request body (or a part of one): strict types, unknown fields ignored, immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)


B = TypeVar("B", bound=Body)

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def tag_by(tag_of: Callable[[Any], str | None], message: str, field: str | None = None) -> Discriminator:
    """The discriminator of a tagged union: `tag_of(value)` names the branch (`Tag`) to validate with.

    When it names none, the error says `message`; with `field`, `param` names that field (the union's
    discriminating key, e.g. a part's `type`), else the union itself. Used as
    `Annotated[Annotated[A, Tag("~a")] | Annotated[B, Tag("~b")], tag_by(...)]`.
    """
    error_type = f"{TAG_FIELD_ERROR}:{field}" if field else "union_tag"
    return Discriminator(tag_of, custom_error_type=error_type, custom_error_message=message)


def limits(info: ValidationInfo) -> Config:
    """The configuration a body is validated with: it holds the request limits."""
    if not isinstance(info.context, Config):
        raise TypeError("request bodies are validated with the service's Config as context")
    return info.context


def json_kind(value: Any) -> str | None:
    """The JSON kind of a value, as a union tag: ~string, ~number, ~boolean, ~array, ~object."""
    if isinstance(value, bool):
        return "~boolean"
    if isinstance(value, (int, float)):
        return "~number"
    if isinstance(value, str):
        return "~string"
    if isinstance(value, list):
        return "~array"
    if isinstance(value, dict):
        return "~object"
    return None


def by_field(name: str, tags: dict[str, str], default: str | None = None) -> Callable[[Any], str | None]:
    """A tag function reading the key `name` of an object (dict while validating, model afterwards)."""

    def tag_of(value: Any) -> str | None:
        key = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
        key = default if key is None else key
        return tags.get(key) if isinstance(key, str) else None

    return tag_of


# --- JSON Schemas sent by clients (response_format, format, text.format) ----------------------------

_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)
_CHECKED: dict[bytes, str | None] = {}  # digest of a schema -> its problem; bounded by _CHECKED_MAX
_CHECKED_MAX = 256


def _schema_problem(schema: dict[str, Any]) -> str | None:
    """What is wrong with a JSON Schema, or what of it the output cannot be held to, or None. Checking
    one takes milliseconds and clients send the same schema with every request, so the verdicts are
    kept (by digest, so big schemas cost no memory)."""
    digest = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).digest()
    if digest in _CHECKED:
        return _CHECKED[digest]
    error = best_match(_META.iter_errors(schema))
    problem = None
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problem = f"{where.lstrip('.') or 'the schema'}: {error.message}"
    else:
        unenforceable = LLMatcher.validate_grammar(LLMatcher.grammar_from_json_schema(schema))
        problem = f"it cannot be enforced on the output: {unenforceable}" if unenforceable else None
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[digest] = problem
    return problem


def _valid_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema (2020-12) as clients send it; `strict` inside it, as Home Assistant puts it, is
    an unknown keyword and allowed."""
    problem = _schema_problem(schema)
    if problem:
        raise PydanticCustomError(
            "json_schema", "is not a valid JSON Schema: {problem}", {"problem": problem}
        )
    return schema


JsonSchema = Annotated[
    dict[str, Any],
    Field(description="A JSON Schema (draft 2020-12) the answer is held to (structured output)"),
    AfterValidator(_valid_json_schema),
]
ANY_JSON: dict[str, Any] = {}  # Ollama's "json": any JSON document
ANY_OBJECT: dict[str, Any] = {"type": "object"}  # OpenAI's json_object: a JSON object


def schema_text(schema: dict[str, Any] | None) -> str:
    """A requested output schema as the worker takes it (SamplingParams.json_schema; "" = free text)."""
    return "" if schema is None else json.dumps(schema, separators=(",", ":"))


# --- parsing and errors ----------------------------------------------------------------------------


def param_of(loc: tuple[str | int, ...]) -> str:
    """`("messages", 0, "~list", 1, "image_url")` -> `messages[0][1].image_url`; () -> body."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif not item.startswith(TAG):
            text += f".{item}"
    return text.lstrip(".") or "body"


_PHRASES = {
    "missing": "is required",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_too_short": "must not be empty",
}


def _error(detail: ErrorDetails) -> APIError:
    kind, loc, message = detail["type"], tuple(detail["loc"]), detail["msg"]
    given = detail.get("input")
    if kind == "json_invalid":
        return APIError(400, f"the request body is not valid JSON: {message}", "invalid_json", "body")
    if kind.startswith(f"{TAG_FIELD_ERROR}:"):
        field = kind.split(":", 1)[1]
        loc = (*loc, field)
        given = given.get(field) if isinstance(given, dict) else None
    param = param_of(loc)
    if kind == "model_type" and not loc:
        return APIError(400, "the request body must be a JSON object", "invalid_request", "body")
    if kind == "none_required":
        return APIError(400, f"'{param}' is not supported here", "invalid_request", param)
    context = detail.get("ctx") or {}
    if kind in _PHRASES:
        text = f"'{param}' {_PHRASES[kind].format(**context)}"
    elif message.startswith("Input should"):
        text = f"'{param}' {message[6:]}"
    else:
        text = f"'{param}' {message}"
    if kind not in _PHRASES and isinstance(given, (int, float, str)) and len(str(given)) <= 80:
        text += f", got {json.dumps(given)}"
    return APIError(400, text, "invalid_request", param)


def parse_body(model: type[B], raw: bytes, context: Any) -> B:
    """The body `raw` (JSON bytes) as `model`, or APIError 400 naming the first bad field."""
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        raise _error(exc.errors(include_url=False)[0]) from None
