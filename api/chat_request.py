"""Validate an OpenAI chat-completions body into a typed request, without any I/O.

Pure policy: every field of the wrong type or range becomes a 400 naming the field in `param`;
unknown fields are ignored, as OpenAI's own server does. Images stay references (data URL, base64 or
URL strings) here: fetching and decoding them is the image intake's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.errors import APIError
from npu_worker.backend import Role, SamplingParams
from npu_worker.config import InferenceConfig

ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class ImageRef:
    """An image named by the request: `ref` is a data URL, bare base64 or an http(s) URL."""

    ref: str
    param: str  # where it was in the request, e.g. messages[0].content[1].image_url


@dataclass(frozen=True)
class ChatTurn:
    role: Role
    parts: tuple[str | ImageRef, ...]


@dataclass(frozen=True)
class ChatRequest:
    model: str | None
    turns: tuple[ChatTurn, ...]
    params: SamplingParams
    stream: bool
    include_usage: bool
    user: str | None

    @property
    def images(self) -> list[ImageRef]:
        return [p for turn in self.turns for p in turn.parts if isinstance(p, ImageRef)]


def _bad(message: str, param: str) -> APIError:
    return APIError(400, message, "invalid_request", param)


def _number(body: dict[str, Any], key: str, low: float, high: float, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"'{key}' must be a number, got {type(value).__name__}", key)
    if not low <= value <= high:
        raise _bad(f"'{key}' must be between {low:g} and {high:g}, got {value}", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{key}' must be an integer, got {type(value).__name__}", key)
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise _bad(f"'{key}' must be {bound}, got {value}", key)
    return value


def _image_part(part: dict[str, Any], param: str) -> ImageRef:
    image = part.get("image_url", part.get("image"))
    where = f"{param}.image_url"
    if isinstance(image, dict):
        image = image.get("url")
        where = f"{param}.image_url.url"
    if not isinstance(image, str) or not image.strip():
        raise _bad("an image part needs 'image_url' as a URL string or an object with a 'url' string", where)
    return ImageRef(image.strip(), where)


def _parts(content: Any, param: str) -> tuple[str | ImageRef, ...]:
    if isinstance(content, str):
        return (content,)
    if not isinstance(content, list) or not content:
        raise _bad("'content' must be a string or a non-empty list of content parts", param)
    parts: list[str | ImageRef] = []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        if not isinstance(part, dict):
            raise _bad("each content part must be an object with a 'type'", where)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _bad("a text part needs 'text' as a string", f"{where}.text")
            parts.append(text)
        elif kind in ("image_url", "image"):
            parts.append(_image_part(part, where))
        else:
            raise _bad(
                f"unsupported content part type {kind!r}; use 'text', 'image_url' or 'image'", f"{where}.type"
            )
    return tuple(parts)


def _turns(messages: Any) -> tuple[ChatTurn, ...]:
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "messages")
    turns: list[ChatTurn] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _bad("each message must be an object with 'role' and 'content'", where)
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"unsupported role {role!r}; use system, user or assistant", f"{where}.role")
        parts = _parts(message.get("content"), f"{where}.content")
        if ROLES[role] != "user" and any(isinstance(p, ImageRef) for p in parts):
            raise _bad("images are accepted in user messages only", f"{where}.content")
        turns.append(ChatTurn(ROLES[role], parts))
    if not any(t.role == "user" for t in turns):
        raise _bad("'messages' needs at least one user message", "messages")
    return tuple(turns)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise _bad("'stop' must be a non-empty string or a list of non-empty strings", "stop")
    if len(stop) > MAX_STOP_SEQUENCES:
        raise _bad(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences, got {len(stop)}", "stop")
    return tuple(stop)


def parse_chat_request(body: Any, defaults: InferenceConfig, max_images: int) -> ChatRequest:
    """The typed request, or APIError(400) naming the first bad field."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", "body")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string", "model")
    turns = _turns(body.get("messages"))
    n = _integer(body, "n", 1)
    if n is not None and n != 1:
        raise _bad("only n=1 is supported (one choice per request)", "n")
    max_tokens = _integer(body, "max_completion_tokens", 1) or _integer(body, "max_tokens", 1)
    seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _bad("'stream_options.include_usage' must be a boolean", "stream_options.include_usage")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("'user' must be a string", "user")
    params = SamplingParams(
        max_tokens=max_tokens or defaults.max_tokens,
        temperature=_number(body, "temperature", 0.0, 2.0, defaults.temperature),
        top_p=_number(body, "top_p", 0.0, 1.0, defaults.top_p),
        seed=seed,
        frequency_penalty=_number(body, "frequency_penalty", -2.0, 2.0, 0.0),
        presence_penalty=_number(body, "presence_penalty", -2.0, 2.0, 0.0),
        stop=_stop(body),
        min_tokens=_integer(body, "min_tokens", 0) or 0,
    )
    request = ChatRequest(model, turns, params, stream, include_usage, user)
    if len(request.images) > max_images:
        raise _bad(f"at most {max_images} images per request, got {len(request.images)}", "messages")
    return request
