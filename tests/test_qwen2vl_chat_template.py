"""Chat templates render with transformers' Jinja settings and never run unsafe code."""

import json
from pathlib import Path

import numpy as np
import pytest

from npu_worker.backend import ImagePart, InvalidRequestError, Message, ModelLoadError, TextPart
from npu_worker.chat_template import ChatTemplate

HELLO = [Message.text("user", "hi")]


def render(source: str, messages: list[Message] = HELLO, **specials: str) -> str:
    return ChatTemplate(source, specials).render(messages)


def test_blocks_are_trimmed_and_left_stripped_as_in_transformers():
    source = "{% for m in messages %}\n    {% if true %}\n[{{ m.role }}]\n    {% endif %}\n{% endfor %}"
    assert render(source) == "[user]\n"


def test_messages_carry_typed_content_parts():
    source = "{% for p in messages[0].content %}{{ p.type }}:{{ p.text | default('') }};{% endfor %}"
    image = ImagePart(np.zeros((2, 2, 3), np.uint8))
    assert render(source, [Message("user", (image, TextPart("what?")))]) == "image:;text:what?;"


def test_tojson_does_not_html_escape():
    assert render("{{ messages[0].content[0].text | tojson }}", [Message.text("user", "<b>&")]) == '"<b>&"'


def test_special_tokens_and_the_generation_prompt_flag_are_visible():
    assert render("{{ eos_token }}{{ add_generation_prompt }}", eos_token="<|im_end|>") == "<|im_end|>True"


def test_raise_exception_in_the_template_is_an_invalid_request():
    with pytest.raises(InvalidRequestError, match="no tools here"):
        render("{{ raise_exception('no tools here') }}")


def test_the_sandbox_refuses_to_mutate_objects():
    with pytest.raises(InvalidRequestError):
        render("{% set parts = messages[0].content %}{{ parts.append(1) }}")


def test_a_template_file_is_used_when_tokenizer_config_has_none(tmp_path: Path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "</s>"}}))
    (tmp_path / "chat_template.jinja").write_text("{{ messages[0].role }}{{ eos_token }}")
    assert ChatTemplate.from_model_dir(tmp_path).render(HELLO) == "user</s>"
    (tmp_path / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer_config\.json"):
        ChatTemplate.from_model_dir(tmp_path)
