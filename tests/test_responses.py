"""OpenAI's Responses API through the running service, with the official openai client."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import shapes_world
from service import Service, image_data_url

MODEL = "qwen2-vl-demo"


@pytest.fixture(scope="module")
def client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)


def _input(url: str, question: str) -> list[Any]:
    return [
        {"role": "developer", "content": "Answer in one word."},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": question},
                {"type": "input_image", "image_url": url, "detail": "auto"},
            ],
        },
    ]


def test_create_with_an_image(client: openai.OpenAI) -> None:
    right = 0
    for seed in range(5):
        url, scene = image_data_url(seed=7100 + seed)
        response = client.responses.create(
            model=MODEL,
            input=_input(url, shapes_world.QUESTIONS["shape"]),
            temperature=0,
            max_output_tokens=12,
        )
        assert response.id.startswith("resp_") and response.object == "response"
        assert response.status == "completed" and response.model == MODEL
        assert response.usage is not None and response.usage.input_tokens > 20
        assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
        right += shapes_world.is_correct(response.output_text, shapes_world.answer(scene, "shape"))
    assert right >= 4, f"{right}/5 shapes right"


def test_streamed_events_carry_the_same_text(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=7201)
    request: dict[str, Any] = {
        "model": MODEL,
        "input": _input(url, "What color is the shape?"),
        "temperature": 0,
    }
    whole = client.responses.create(**request)
    events = list(client.responses.create(**request, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == whole.output_text
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text == whole.output_text and completed.usage is not None


def test_a_length_finish_is_incomplete(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=7302)
    response = client.responses.create(
        model=MODEL, input=_input(url, "Describe the image."), max_output_tokens=1, temperature=0
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_string_input_and_instructions(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="What shape is this?", instructions="Be brief.")
    assert response.status in ("completed", "incomplete") and response.instructions == "Be brief."
