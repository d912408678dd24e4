"""Chat completions through the running service, with the official openai client and with httpx."""

from __future__ import annotations

import base64

import openai
import pytest
import shapes_world
from service import ROOT, Service, image_data_url

from api.image_intake import ImageLimits, decode_image
from npu_worker.backend import ImagePart, Message, TextPart
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

MODEL = "qwen2-vl-demo"
MODEL_DIR = ROOT / "models/demo/qwen2-vl-demo"


@pytest.fixture(scope="module")
def client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)


def _ask(url: str, question: str) -> list[dict[str, object]]:
    return [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": question}],
        }
    ]


def test_chat_with_image_answers_the_colour(client: openai.OpenAI) -> None:
    right = 0
    for seed in range(10):
        url, scene = image_data_url(seed=5000 + seed)
        reply = client.chat.completions.create(
            model=MODEL, messages=_ask(url, shapes_world.QUESTIONS["colour"]), temperature=0, max_tokens=8
        )
        assert reply.id.startswith("chatcmpl-")
        assert reply.object == "chat.completion"
        assert reply.model == MODEL
        assert reply.system_fingerprint
        assert reply.choices[0].message.role == "assistant"
        assert reply.choices[0].finish_reason == "stop"
        right += shapes_world.is_correct(
            reply.choices[0].message.content or "", shapes_world.answer(scene, "colour")
        )
    assert right >= 9, f"{right}/10 colours right"


def test_usage_equals_the_tokenizer_count(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=7, size=(300, 200))
    question = "What shape is this?"
    reply = client.chat.completions.create(
        model=MODEL, messages=_ask(url, question), temperature=0, max_tokens=8
    )
    data = base64.b64decode(url.split(",", 1)[1])
    runner = Qwen2VLRunner(MODEL_DIR)
    pixels = decode_image(data, ImageLimits(), runner.info.max_pixels)
    expected = runner.count_tokens([Message("user", (ImagePart(pixels), TextPart(question)))])
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == expected
    assert reply.usage.completion_tokens >= 1
    assert reply.usage.total_tokens == expected + reply.usage.completion_tokens


def test_streaming_matches_the_whole_answer_and_reports_usage(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=11)
    messages = _ask(url, shapes_world.QUESTIONS["shape"])
    whole = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=12)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=0,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=12)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=_ask(url, "What color is the shape?"), max_tokens=6, stream=True
        )
    )
    assert all(c.choices for c in chunks)


def test_the_design_studys_exact_request(service: Service) -> None:
    url, _ = image_data_url(seed=3, fmt="JPEG")
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image_url": url},
                    {
                        "type": "text",
                        "text": "Is there a person in this image? If so, describe their clothing and what "
                        "they're doing.",
                    },
                ],
            }
        ],
        "temperature": 0.7,
        "max_tokens": 200,
        "stream": False,
    }
    response = service.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
    assert reply["model"] == MODEL
    assert isinstance(reply["created"], int)
    assert reply["choices"][0]["message"]["role"] == "assistant"
    assert isinstance(reply["choices"][0]["message"]["content"], str)
    assert reply["choices"][0]["finish_reason"] in ("stop", "length")
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert response.headers["x-request-id"]


def test_image_forms_clients_send_are_all_accepted(service: Service) -> None:
    url, _ = image_data_url(seed=21)
    bare = url.split(",", 1)[1]
    forms = [
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
        {"type": "image_url", "image_url": url},
        {"type": "image", "image_url": url},
        {"type": "image", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": bare}},
    ]
    answers = set()
    for form in forms:
        body = {
            "messages": [
                {"role": "user", "content": [form, {"type": "text", "text": "What color is the shape?"}]}
            ],
            "temperature": 0,
            "max_tokens": 6,
        }
        response = service.http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, (form["type"], response.text)
        answers.add(response.json()["choices"][0]["message"]["content"])
    assert len(answers) == 1  # the same picture, however it was sent


def test_multi_turn_with_two_images_and_a_system_message(client: openai.OpenAI) -> None:
    first, _ = image_data_url(seed=31)
    second, _ = image_data_url(seed=32)
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": first}},
                    {"type": "text", "text": "What color is the shape?"},
                ],
            },
            {"role": "assistant", "content": "red"},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": second}},
                    {"type": "text", "text": "And this one?"},
                ],
            },
        ],
        temperature=0,
        max_tokens=8,
    )
    assert reply.usage is not None and reply.usage.prompt_tokens > 40
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_same_seed_same_text(client: openai.OpenAI) -> None:
    url, _ = image_data_url(seed=41)
    texts = {
        client.chat.completions.create(
            model=MODEL, messages=_ask(url, "Describe the image."), temperature=1.5, seed=1234, max_tokens=10
        )
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(texts) == 1


def test_models_list_and_lookup(client: openai.OpenAI, service: Service) -> None:
    ids = {m.id for m in client.models.list().data}
    assert MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL
    missing = service.http.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_health_and_readiness_fields(service: Service) -> None:
    health = service.http.get("/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL and health["model_loaded"] is True
    assert health["state"] == "ready" and health["uptime_seconds"] > 0 and health["backend"] == "onnx"
    assert health["version"]
    ready = service.http.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert service.http.get("/readyz").json()["ready"] is True


def test_metrics_count_requests_and_tokens(client: openai.OpenAI, service: Service) -> None:
    url, _ = image_data_url(seed=51)
    client.chat.completions.create(model=MODEL, messages=_ask(url, "What shape is this?"), max_tokens=4)
    text = service.http.get("/metrics").text
    for name in (
        'hailo_vision_requests_total{route="/v1/chat/completions",status="200"}',
        "hailo_vision_queue_wait_seconds_bucket",
        "hailo_vision_time_to_first_token_seconds_count",
        "hailo_vision_request_duration_seconds_count",
        "hailo_vision_prompt_tokens_total",
        "hailo_vision_completion_tokens_total",
        "hailo_vision_images_decoded_total",
        "hailo_vision_worker_restarts_total",
        "hailo_vision_model_load_seconds",
        "hailo_vision_requests_in_flight",
        "hailo_vision_requests_queued",
        "hailo_vision_worker_up 1.0",
    ):
        assert name in text, name
    tokens = [line for line in text.splitlines() if line.startswith("hailo_vision_worker_tokens_generated ")]
    assert float(tokens[0].split()[1]) > 0
