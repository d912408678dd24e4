"""Ollama's API through the running service, with the official `ollama` Python client."""

from __future__ import annotations

import datetime

import ollama
import pytest
import shapes_world
from service import Service, image_data_url

MODEL = "qwen2-vl-demo"


@pytest.fixture(scope="module")
def client(service: Service) -> ollama.Client:
    return ollama.Client(host=service.base_url)


def _raw_b64(seed: int) -> tuple[str, shapes_world.Scene]:
    url, scene = image_data_url(seed=seed)
    return url.split(",", 1)[1], scene


def _plausible(reply: ollama.ChatResponse | ollama.GenerateResponse) -> None:
    assert reply.done is True and reply.done_reason in ("stop", "length")
    assert reply.prompt_eval_count and reply.prompt_eval_count > 20  # the image's tokens are in it
    assert reply.eval_count and reply.eval_count >= 1
    durations = (reply.load_duration, reply.prompt_eval_duration, reply.eval_duration)
    assert all(d is not None and d >= 0 for d in durations)
    assert reply.prompt_eval_duration and reply.prompt_eval_duration > 0
    assert reply.total_duration and reply.total_duration >= sum(d or 0 for d in durations)
    assert reply.total_duration < 3600 * 10**9  # nanoseconds, not seconds or milliseconds gone wrong


def test_chat_with_an_image_answers_the_colour(client: ollama.Client) -> None:
    right = 0
    for seed in range(5):
        image, scene = _raw_b64(6000 + seed)
        reply = client.chat(
            model=MODEL,
            messages=[{"role": "user", "content": shapes_world.QUESTIONS["colour"], "images": [image]}],
            options={"temperature": 0, "num_predict": 8},
        )
        assert reply.model == MODEL and reply.message.role == "assistant"
        _plausible(reply)
        right += shapes_world.is_correct(reply.message.content or "", shapes_world.answer(scene, "colour"))
    assert right >= 4, f"{right}/5 colours right"


def test_chat_streamed_matches_the_whole_answer(client: ollama.Client) -> None:
    image, _ = _raw_b64(6101)
    messages = [{"role": "user", "content": "What shape is this?", "images": [image]}]
    whole = client.chat(model=f"{MODEL}:latest", messages=messages, options={"temperature": 0})
    chunks = list(client.chat(model=MODEL, messages=messages, options={"temperature": 0}, stream=True))
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert "".join(c.message.content or "" for c in chunks) == whole.message.content
    _plausible(chunks[-1])
    assert chunks[-1].eval_count == whole.eval_count


def test_generate_with_an_image_streamed_and_not(client: ollama.Client) -> None:
    image, scene = _raw_b64(6202)
    whole = client.generate(
        model=MODEL, prompt="What shape is this?", images=[image], options={"temperature": 0}
    )
    _plausible(whole)
    assert shapes_world.is_correct(whole.response, shapes_world.answer(scene, "shape"))
    parts = list(
        client.generate(
            model=MODEL, prompt="What shape is this?", images=[image], options={"temperature": 0}, stream=True
        )
    )
    assert "".join(p.response for p in parts) == whole.response and parts[-1].done


def test_list_show_and_ps(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert {f"{MODEL}:latest", "clip-demo:latest"} <= names
    listed = next(m for m in client.list().models if m.model == f"{MODEL}:latest")
    assert listed.size and listed.size > 0 and listed.digest and listed.details.family == "qwen2vl"
    shown = client.show(MODEL)
    assert shown.capabilities is not None and {"completion", "vision"} <= set(shown.capabilities)
    assert shown.modelinfo and shown.modelinfo["qwen2vl.context_length"] == 2048
    assert "embedding" in (client.show("clip-demo").capabilities or [])
    running = client.ps().models
    assert {m.model for m in running} >= {f"{MODEL}:latest"}
    for model in running:
        assert model.expires_at is not None and model.expires_at > datetime.datetime.now(datetime.UTC)


def test_embed_texts_and_images(client: ollama.Client, service: Service) -> None:
    texts = client.embed(model="clip-demo", input=["a photo of a red circle", "a photo of a blue square"])
    assert len(texts.embeddings) == 2 and len(texts.embeddings[0]) == 64
    image, _ = _raw_b64(6303)
    mixed = service.http.post(
        "/api/embed", json={"model": "clip-demo", "input": ["a red circle", {"image": image}]}
    ).json()
    assert len(mixed["embeddings"]) == 2 and mixed["total_duration"] > 0


def test_the_older_embeddings_form_gives_the_same_vector(client: ollama.Client) -> None:
    """/api/embeddings, the client's deprecated embeddings(): one prompt, one vector; empty: none."""
    text = "a photo of a red circle"
    older = client.embeddings(model="clip-demo", prompt=text).embedding
    newer = client.embed(model="clip-demo", input=text).embeddings[0]
    assert len(older) == 64 and older == pytest.approx(newer, abs=1e-6)
    assert client.embeddings(model="clip-demo", prompt="").embedding == []
    with pytest.raises(ollama.ResponseError) as not_clip:
        client.embeddings(model="qwen2-vl-demo", prompt=text)
    assert not_clip.value.status_code == 400


def test_unknown_model_and_pull(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="llava:7b", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.status_code == 404 and "not found" in missing.value.error
    assert client.pull(MODEL).status == "success"
    with pytest.raises(ollama.ResponseError) as absent:
        client.pull("llava:7b")
    assert absent.value.status_code == 404
