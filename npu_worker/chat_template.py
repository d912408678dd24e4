"""Render a model's own chat template (Jinja, from tokenizer_config.json) exactly as transformers does.

Backend-independent: the CPU runner tokenizes the rendered prompt, and the Hailo backend, whose device
applies the template itself, renders it too to count prompt tokens. Messages are checked here so that
every backend rejects the same malformed conversations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from npu_worker.backend import ImagePart, InvalidRequestError, Message, ModelLoadError, TextPart, VideoPart
from npu_worker.cpu.model_files import read_json

ROLES = ("system", "user", "assistant")
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' tojson: plain json.dumps, without Jinja's HTML escaping."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def validate_messages(messages: Sequence[Message]) -> None:
    """Reject conversations no chat model can answer: empty, unknown roles, no user turn."""
    if not messages:
        raise InvalidRequestError("messages must not be empty", param="messages")
    for index, message in enumerate(messages):
        if message.role not in ROLES:
            raise InvalidRequestError(
                f"messages[{index}].role is {message.role!r}; expected one of {', '.join(ROLES)}",
                param="messages",
            )
    if not any(m.role == "user" for m in messages):
        raise InvalidRequestError("messages need at least one message with role 'user'", param="messages")


def template_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages as the dicts HF processors hand to templates (content as a list of typed parts)."""
    converted = []
    for message in messages:
        content: list[dict[str, str]] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append({"type": "image"})
            elif isinstance(part, VideoPart):
                content.append({"type": "video"})
            else:
                raise InvalidRequestError(f"unsupported message part {type(part).__name__}", "messages")
        converted.append({"role": message.role, "content": content})
    return converted


def _special_token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json stores it: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class ChatTemplate:
    """A compiled chat template plus the special tokens transformers exposes to it."""

    def __init__(self, source: str, special_tokens: dict[str, str], origin: str = "chat template") -> None:
        try:
            self.template = _environment().from_string(source)
        except jinja2.exceptions.TemplateSyntaxError as exc:
            raise ModelLoadError(f"{origin}: the chat template does not compile ({exc})") from exc
        self.special_tokens = special_tokens

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ChatTemplate:
        """The template of tokenizer_config.json (`chat_template`), else chat_template.jinja/.json."""
        config_path = model_dir / "tokenizer_config.json"
        config = read_json(model_dir, "tokenizer_config.json")
        specials = {k: t for k in SPECIAL_TOKEN_KEYS if (t := _special_token_text(config.get(k))) is not None}
        source = config.get("chat_template")
        origin = str(config_path)
        if source is None and (model_dir / "chat_template.jinja").is_file():
            origin = str(model_dir / "chat_template.jinja")
            source = (model_dir / "chat_template.jinja").read_text(encoding="utf-8")
        elif source is None and (model_dir / "chat_template.json").is_file():
            origin = str(model_dir / "chat_template.json")
            source = read_json(model_dir, "chat_template.json").get("chat_template")
        if not isinstance(source, str):
            raise ModelLoadError(f"{config_path}: no `chat_template` string (and no chat_template.jinja)")
        return cls(source, specials, origin)

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The prompt text, ending with the assistant header when add_generation_prompt is set."""
        validate_messages(messages)
        try:
            return self.template.render(
                messages=template_messages(messages),
                add_generation_prompt=add_generation_prompt,
                **self.special_tokens,
            )
        except jinja2.exceptions.TemplateError as exc:
            raise InvalidRequestError(
                f"the model's chat template rejects the messages: {exc}", "messages"
            ) from exc
