"""Follow-up turns reuse the conversation's kept context on the CPU backend: answered exactly as from
a clean start (greedy), unrelated requests unaffected, and a release drops what is kept. In this
process with the real runner, and through the running service with the official clients."""

from __future__ import annotations

import base64
import functools
import io
from typing import Any

import numpy as np
import ollama
import openai
import pytest
import shapes_world as sw
from PIL import Image
from service import Service, clip_frames, image_data_url

from npu_worker.backend import (
    Finish,
    ImagePart,
    Message,
    ReleaseScope,
    SamplingParams,
    TextPart,
    Token,
    VideoPart,
)
from npu_worker.config import ClipConfig, Config, InferenceConfig, ModelConfig
from npu_worker.cpu.onnx_backend import OnnxBackend
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.images import as_rgb_array

MODEL_DIR = "models/demo/qwen2-vl-demo"
MODEL = "qwen2-vl-demo"
GREEDY = SamplingParams(temperature=0, max_tokens=12)


@functools.cache
def runner(kept: int) -> Qwen2VLRunner:
    return Qwen2VLRunner(MODEL_DIR, kept_contexts=kept, kept_context_bytes=64 * 2**20)


def ask(generate: Any, messages: list[Message]) -> tuple[str, Finish]:
    events = list(generate(messages, GREEDY))
    assert isinstance(events[-1], Finish)
    return "".join(e.text for e in events if isinstance(e, Token)), events[-1]


def picture(seed: int) -> np.ndarray:
    return np.asarray(sw.render(sw.random_scene(np.random.default_rng(seed))))


def opening(seed: int) -> list[Message]:
    frames, _ = clip_frames(seed, "motion")
    first = (ImagePart(picture(seed)), TextPart(sw.QUESTIONS["count"]))
    return [Message("system", (TextPart("You answer questions about shapes."),)), Message("user", first)] + (
        [Message("user", (VideoPart(tuple(frames)), TextPart(sw.CLIP_QUESTIONS["motion"])))]
        if seed % 2
        else []
    )


def then(messages: list[Message], answer: str, *parts: Any) -> list[Message]:
    return [*messages, Message.text("assistant", answer), Message("user", parts)]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_follow_ups_reuse_the_context_and_answer_as_a_clean_start(seed: int) -> None:
    reusing, clean = runner(2).generate, runner(0).generate
    conversation = opening(seed)
    answer, _ = ask(reusing, conversation)
    for question in (sw.QUESTIONS["shape"], sw.QUESTIONS["colour"]):
        conversation = then(conversation, answer, TextPart(question))
        answer, finish = ask(reusing, conversation)
        reference, fresh = ask(clean, conversation)
        assert (answer, finish.prompt_tokens) == (reference, fresh.prompt_tokens)
        assert finish.cached_tokens > 0 and fresh.cached_tokens == 0
    with_picture = then(
        conversation, answer, ImagePart(picture(seed + 100)), TextPart(sw.QUESTIONS["colour"])
    )
    answer, finish = ask(reusing, with_picture)  # the new picture is prefilled after the kept context
    assert finish.cached_tokens > 0 and answer == ask(clean, with_picture)[0]


def test_unrelated_requests_start_clean_and_answer_as_alone() -> None:
    reusing, clean = runner(2).generate, runner(0).generate
    conversation = opening(21)
    answer, _ = ask(reusing, conversation)
    same_text_other_picture = [
        conversation[0],
        Message("user", (ImagePart(picture(99)), TextPart(sw.QUESTIONS["count"]))),
    ]
    for unrelated in (
        [Message("user", (ImagePart(picture(22)), TextPart(sw.QUESTIONS["shape"])))],
        then(same_text_other_picture, answer, TextPart(sw.QUESTIONS["shape"])),
        then([*conversation[:1], Message("user", (TextPart("Hello!"),))], answer, TextPart("Hi")),
    ):
        reply, finish = ask(reusing, unrelated)
        assert finish.cached_tokens == 0
        assert reply == ask(clean, unrelated)[0]


def test_a_release_drops_the_kept_contexts() -> None:
    config = Config(
        model=ModelConfig(path=MODEL_DIR, warmup=False),
        clip=ClipConfig(enabled=False),
        inference=InferenceConfig(context_reuse_entries=2),
    )
    backend = OnnxBackend(config)
    backend.load()
    conversation = opening(31)
    answer, _ = ask(lambda m, p: backend.generate(MODEL, m, p), conversation)
    follow = then(conversation, answer, TextPart(sw.QUESTIONS["shape"]))
    assert backend.vlm is not None
    runner_before = backend.vlm
    backend.release(ReleaseScope.VLM)
    assert len(runner_before.contexts) == 0
    backend.load()
    assert ask(lambda m, p: backend.generate(MODEL, m, p), follow)[1].cached_tokens == 0


def test_memory_pressure_shrinks_the_kept_contexts_now_and_across_loads() -> None:
    config = Config(
        model=ModelConfig(path=MODEL_DIR, warmup=False),
        clip=ClipConfig(enabled=False),
        inference=InferenceConfig(context_reuse_entries=2, context_reuse_mb=64),
    )
    backend = OnnxBackend(config)
    backend.load()

    def generate(messages: list[Message], params: SamplingParams) -> Any:
        return backend.generate(MODEL, messages, params)

    conversation = opening(41)
    answer, _ = ask(generate, conversation)
    assert backend.vlm is not None and len(backend.vlm.contexts) == 1
    backend.limit_kept_contexts(0.0)  # the ladder's word when memory is tight
    assert len(backend.vlm.contexts) == 0
    follow = then(conversation, answer, TextPart(sw.QUESTIONS["shape"]))
    assert ask(generate, follow)[1].cached_tokens == 0 and len(backend.vlm.contexts) == 0
    backend.release(ReleaseScope.VLM)
    backend.load()  # the share holds across a load
    assert backend.vlm is not None and backend.vlm.contexts.max_bytes == 0
    backend.limit_kept_contexts(1.0)  # memory is back
    answer, _ = ask(generate, conversation)
    assert ask(generate, then(conversation, answer, TextPart(sw.QUESTIONS["shape"])))[1].cached_tokens > 0


@pytest.fixture(scope="module")
def client(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)


def test_a_follow_up_through_the_openai_client_reuses_the_context(client: openai.OpenAI) -> None:
    url, _ = image_data_url(4242)
    messages: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": sw.QUESTIONS["count"]},
            ],
        }
    ]
    first = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=12)
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": sw.QUESTIONS["shape"]},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=12)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens > first.usage.prompt_tokens
    image = as_rgb_array(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    alone = [
        Message("user", (ImagePart(image), TextPart(sw.QUESTIONS["count"]))),
        Message.text("assistant", first.choices[0].message.content or ""),
        Message("user", (TextPart(sw.QUESTIONS["shape"]),)),
    ]
    assert second.choices[0].message.content == ask(runner(0).generate, alone)[0]


def test_a_follow_up_through_the_ollama_client_answers_as_a_clean_start(service: Service) -> None:
    client = ollama.Client(host=service.base_url)
    url, _ = image_data_url(4343)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": sw.QUESTIONS["count"], "images": [url.split(",", 1)[1]]}
    ]
    options = {"temperature": 0, "num_predict": 12}
    first = client.chat(model=MODEL, messages=messages, options=options)
    messages += [
        {"role": "assistant", "content": first.message.content},
        {"role": "user", "content": sw.QUESTIONS["shape"]},
    ]
    reused = client.chat(model=MODEL, messages=messages, options=options)  # takes the first turn's context
    unrelated = client.chat(model=MODEL, messages=messages[2:], options=options)  # no picture, same question
    again = client.chat(model=MODEL, messages=messages, options=options)  # nothing kept continues it: clean
    assert reused.message.content == again.message.content
    assert (
        unrelated.message.content == ask(runner(0).generate, [Message.text("user", sw.QUESTIONS["shape"])])[0]
    )
