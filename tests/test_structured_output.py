"""Structured output: answers held to a JSON Schema on every API; always valid on the CPU backend
(constrained decoding), validated and retried within a bound on the Hailo backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import ollama
import pytest
import shapes_world
from client_requests import ReviewMetadata, _ha_task_schema
from double_service import double_service
from hailo_double_tools import read_journal
from openai import OpenAI
from service import ROOT, Service, image_data_url
from tokenizers import Tokenizer

from npu_worker.backend import Finish, ImagePart, Message, SamplingParams, TextPart, Token
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.json_constraint import JsonVocabulary
from npu_worker.sampling import TokenSampler
from npu_worker.structured import JSON_HINT, StructuredOutputError, validated, with_json_hint

DEMO_TOKENIZER = ROOT / "models/demo/qwen2-vl-demo/tokenizer.json"
_TEXT = json.loads((ROOT / "models/demo/qwen2-vl-demo/config.json").read_text())["text_config"]
END_ID, VOCAB = _TEXT["eos_token_id"], _TEXT["vocab_size"]  # the demo VLM's <|im_end|>, its logits' width
SHAPE_SCHEMA = {
    "type": "object",
    "properties": {
        "color": {"type": "string", "enum": list(shapes_world.COLOUR_NAMES)},
        "shape": {"type": "string", "enum": list(shapes_world.SHAPES)},
    },
    "required": ["color", "shape"],
    "additionalProperties": False,
}
NAMED_SCHEMAS = {
    "frigate_review": ReviewMetadata.model_json_schema(),
    "home_assistant_task": _ha_task_schema(),
    "shapes": SHAPE_SCHEMA,
}


def image() -> np.ndarray:
    return np.asarray(shapes_world.render(shapes_world.random_scene(np.random.default_rng(3), n_shapes=1)))


@pytest.fixture(scope="module")
def runner() -> Qwen2VLRunner:
    return Qwen2VLRunner(ROOT / "models/demo/qwen2-vl-demo")


def test_the_demo_model_constrained_is_never_invalid_in_50_samples_at_temperature_1(
    runner: Qwen2VLRunner,
) -> None:
    question = [Message("user", (ImagePart(image()), TextPart("What is it?")))]
    messages = with_json_hint(question, params(SHAPE_SCHEMA))
    for seed in range(50):
        events = list(runner.generate(messages, params(SHAPE_SCHEMA, seed=seed)))
        assert events[-1] == Finish("stop", events[-1].prompt_tokens, len(events) - 1)  # type: ignore[union-attr]
        text = "".join(e.text for e in events if isinstance(e, Token))
        jsonschema.validate(json.loads(text), SHAPE_SCHEMA)


def params(schema: dict[str, Any], seed: int = 0) -> SamplingParams:
    return SamplingParams(max_tokens=200, temperature=1.0, seed=seed, json_schema=json.dumps(schema))


@pytest.mark.parametrize("name", list(NAMED_SCHEMAS))
def test_frigates_and_home_assistants_schemas_are_held_to_by_the_grammar(name: str) -> None:
    """The grammar engine on the demo tokenizer with a stand-in model that leans towards closing
    quotes and brackets (an untrained model rarely ends a free string): 50 documents sampled at
    temperature 1, every one of them meeting the schema - anyOf with null, lengths, optional fields,
    no extra properties, and `strict` inside the schema."""
    schema = NAMED_SCHEMAS[name]
    tokenizer = Tokenizer.from_file(str(DEMO_TOKENIZER))
    vocabulary = JsonVocabulary(DEMO_TOKENIZER, [END_ID])
    texts = [tokenizer.decode([i], skip_special_tokens=False) for i in range(tokenizer.get_vocab_size())]
    lean = np.array(
        [3.0 if any(c in t for c in '"}],') else 0.0 for t in texts] + [0.0] * (VOCAB - len(texts))
    )
    rng = np.random.default_rng(5)
    for seed in range(50):
        sampler = TokenSampler(params(schema, seed), [END_ID], vocabulary.constraint(json.dumps(schema)))
        tokens = []
        while (token := sampler.choose(rng.normal(size=VOCAB) + lean)) != END_ID:
            tokens.append(token)
            assert len(tokens) < 2000
        jsonschema.validate(json.loads(tokenizer.decode(tokens)), schema)


def test_the_hint_ends_the_last_user_message_only_when_json_is_asked() -> None:
    messages = [Message("system", (TextPart("be brief"),)), Message("user", (TextPart("What?"),))]
    assert with_json_hint(messages, SamplingParams()) == messages
    hinted = with_json_hint(messages, SamplingParams(json_schema="{}"))
    assert hinted[0] == messages[0] and hinted[1].parts[-1] == TextPart(f"\n{JSON_HINT}")


def scripted(answers: list[str], seen: list[SamplingParams]) -> Any:
    def generate(tries: SamplingParams) -> Iterator[Token | Finish]:
        seen.append(tries)
        text = answers[len(seen) - 1]
        yield Token(text, 1)
        yield Finish("stop", 3, 1)

    return generate


def test_validate_and_retry_sends_the_first_answer_that_meets_the_schema() -> None:
    seen: list[SamplingParams] = []
    wanted = SamplingParams(temperature=0.0, seed=7, json_schema=json.dumps(SHAPE_SCHEMA))
    good = '{"color":"red","shape":"circle"}'
    events = list(validated(scripted(["red circle", '{"color":"pink"}', good], seen), wanted, attempts=3))
    assert [e.text for e in events if isinstance(e, Token)] == [good]
    assert [p.temperature for p in seen] == [0.0, 0.7, 0.7]  # a greedy retry would only repeat itself
    assert [p.seed for p in seen] == [7, 8, 9]


def test_validate_and_retry_gives_up_after_its_bound_with_a_clear_error() -> None:
    wanted = SamplingParams(json_schema=json.dumps(SHAPE_SCHEMA))
    with pytest.raises(StructuredOutputError, match=r"in 2 attempts.*not JSON"):
        list(validated(scripted(["red", "circle"], []), wanted, attempts=2))


def test_the_openai_client_gets_the_right_colour_and_shape_in_its_strict_schema(service: Service) -> None:
    """docs/API_SPEC.md's example: free strings, so the grammar alone cannot make the answer right;
    the demo VLM (94 % on this question held out) must name what is drawn."""
    client = OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)
    free = {**SHAPE_SCHEMA, "properties": {"color": {"type": "string"}, "shape": {"type": "string"}}}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "shape", "strict": True, "schema": free}}
    right = 0
    for seed in range(6):
        url, scene = image_data_url(seed)
        content: Any = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "What color and shape is it?"},
        ]
        messages: Any = [{"role": "user", "content": content}]
        if seed % 2:
            chunks = client.chat.completions.create(
                model="qwen2-vl-demo", messages=messages, response_format=fmt, temperature=0, stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            reply = client.chat.completions.create(
                model="qwen2-vl-demo", messages=messages, response_format=fmt, temperature=0
            )
            text = reply.choices[0].message.content or ""
        answer = json.loads(text)
        jsonschema.validate(answer, free)
        right += answer == json.loads(shapes_world.json_answer(scene, ("color", "shape")))
    assert right >= 5


def test_the_responses_api_and_ollama_hold_to_their_formats(service: Service) -> None:
    client = OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0)
    url, _ = image_data_url(12)
    answer = client.responses.create(
        model="qwen2-vl-demo",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": url},
                    {"type": "input_text", "text": "What?"},
                ],
            }
        ],
        text={"format": {"type": "json_schema", "name": "shape", "schema": SHAPE_SCHEMA}},
    )
    jsonschema.validate(json.loads(answer.output_text), SHAPE_SCHEMA)
    chat = ollama.Client(host=service.base_url).chat(
        model="qwen2-vl-demo",
        messages=[{"role": "user", "content": "What is it?", "images": [url.split(",", 1)[1]]}],
        format=SHAPE_SCHEMA,
    )
    jsonschema.validate(json.loads(chat.message.content or ""), SHAPE_SCHEMA)
    anything = service.http.post(
        "/api/generate", json={"model": "qwen2-vl-demo", "prompt": "hi", "format": "json", "stream": False}
    )
    json.loads(anything.json()["response"])


def test_a_schema_feature_that_cannot_be_enforced_is_a_400_naming_it(service: Service) -> None:
    schema = {"type": "object", "properties": {"a": {"not": {"type": "string"}}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = {"messages": [{"role": "user", "content": "hi"}], "response_format": fmt}
    reply = service.http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "response_format.json_schema.schema" and '"not"' in error["message"]
    ollama_reply = service.http.post(
        "/api/chat", json={"model": "qwen2-vl-demo", "messages": [], "format": schema}
    )
    assert ollama_reply.status_code == 400 and '"not"' in ollama_reply.json()["error"]


def test_the_hailo_backend_retries_then_answers_422_naming_the_bound(tmp_path: Path) -> None:
    service, journal = double_service(tmp_path, {"inference": {"structured_output_attempts": 2}})
    service.wait_ready()
    try:
        url, _ = image_data_url(13, size=(112, 112))
        content = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "How many shapes?"},
        ]
        fmt = {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "array", "minItems": 3}},
        }
        reply = service.http.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": content}],
                "response_format": fmt,
                "max_tokens": 8,
                "temperature": 0,
            },
        )
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert error["code"] == "structured_output_failed" and "in 2 attempts" in error["message"]
        tries = [e for e in read_journal(journal) if e["event"] == "generate"]
        assert len(tries) == 2 and tries[0]["args"]["do_sample"] is False  # greedy first
        assert (
            tries[1]["args"]["do_sample"] is True and tries[1]["args"]["temperature"] == 0.7
        )  # then sampled
    finally:
        service.stop()
