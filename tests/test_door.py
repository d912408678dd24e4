"""The door: hailo-ollama's text models reached through hailo-vision, with the official clients.

A fake hailo-ollama (tests/fake_ollama.py, a real server on the HailoRT double) sits behind the
service. Its answers are compared with what it says when asked directly, its event log shows what
reached it, and the order of turns is read from events and /health, never from sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from hailo_double import subprocess_env
from ollama_testkit import MODEL, RunningOllama, endless_llm_hef
from service import Service, image_data_url, wait_until

QUESTION = "Tell me about shapes."  # what RunningOllama.chat asks
ASK = [{"role": "user", "content": QUESTION}]


class Door:
    """The service on the CPU backend with a fake hailo-ollama behind it."""

    def __init__(self, tmp: Path, inference: dict[str, Any] | None = None) -> None:
        env = subprocess_env(
            {}, HAILO_DOUBLE_STATE_DIR=str(tmp / "device"), HAILO_DOUBLE_TOKEN_DELAY_S="0.01"
        )
        self.ollama = RunningOllama(tmp, {MODEL: endless_llm_hef(tmp / "hef")}, env)
        scheduler = {"ollama_url": self.ollama.url, "ollama_poll_s": 0.2, "ollama_timeout_s": 0.5}
        config = {"scheduler": scheduler, "inference": inference or {}}
        self.service = Service(tmp, config).wait_ready()
        wait_until(lambda: MODEL in self.tag_names())  # the scheduler has read hailo-ollama's models

    def tag_names(self) -> list[str]:
        return [m["name"] for m in self.service.http.get("/api/tags").json()["models"]]

    def door_health(self) -> dict[str, int]:
        door: dict[str, int] = self.service.http.get("/health").json()["scheduler"]["door"]
        return door

    def direct_answer(self, num_predict: int) -> tuple[str, int]:
        """What hailo-ollama answers QUESTION when asked itself, and in how many tokens."""
        lines = self.ollama.chat(num_predict)
        return "".join(line["message"]["content"] for line in lines), lines[-1]["eval_count"]

    def stop(self) -> None:
        self.service.stop()
        self.ollama.stop()


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    running = Door(tmp_path_factory.mktemp("door"))
    yield running
    running.stop()


def test_both_services_models_are_listed_marked_by_who_serves_them(door: Door) -> None:
    tags = {m["name"]: m for m in door.service.http.get("/api/tags").json()["models"]}
    assert tags["qwen2-vl-demo:latest"]["served_by"] == "hailo-vision"
    assert tags[MODEL]["served_by"] == "hailo-ollama" and tags[MODEL]["size"] > 0
    assert "completion" in tags[MODEL]["capabilities"]
    client = openai.OpenAI(base_url=f"{door.service.base_url}/v1", api_key="none")
    owners = {m.id: m.owned_by for m in client.models.list()}
    assert owners["qwen2-vl-demo"] == "hailo-vision" and owners[MODEL] == "hailo-ollama"
    assert client.models.retrieve(MODEL).owned_by == "hailo-ollama"
    show = ollama.Client(host=door.service.base_url).show(MODEL)
    assert show.capabilities == ["completion"] and "hailo-ollama" in (show.modelfile or "")
    door.ollama.load()
    running = wait_until(
        lambda: {m["name"]: m for m in door.service.http.get("/api/ps").json()["models"]}.get(MODEL)
    )
    assert running["served_by"] == "hailo-ollama" and running["size_vram"] == running["size"] > 0


def test_an_ollama_client_chat_is_forwarded_and_streamed_back(door: Door) -> None:
    expected, tokens = door.direct_answer(6)
    client = ollama.Client(host=door.service.base_url)
    chunks = list(client.chat(MODEL, ASK, stream=True, options={"num_predict": 6}, keep_alive="5m"))
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert "".join(c.message.content or "" for c in chunks) == expected
    assert chunks[-1].done_reason == "length" and chunks[-1].eval_count == tokens
    whole = client.generate(MODEL, QUESTION, options={"num_predict": 6}, stream=False)
    assert whole.response == expected and whole.model == MODEL
    requests = [e for e in door.ollama.events("request") if e["path"] == "/api/chat"]
    assert requests[-2]["keep_alive"] == 300  # Ollama's "5m", as the integer seconds hailo-ollama reads


def test_openai_chat_completions_reach_hailo_ollama_streamed_and_whole(door: Door) -> None:
    expected, tokens = door.direct_answer(5)
    client = openai.OpenAI(base_url=f"{door.service.base_url}/v1", api_key="none")
    whole = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=5)  # type: ignore[arg-type]
    assert whole.choices[0].message.content == expected
    assert whole.choices[0].finish_reason == "length" and whole.usage is not None
    assert whole.usage.completion_tokens == tokens
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_the_responses_api_reaches_hailo_ollama(door: Door) -> None:
    expected, _ = door.direct_answer(5)
    client = openai.OpenAI(base_url=f"{door.service.base_url}/v1", api_key="none")
    response = client.responses.create(model=MODEL, input=QUESTION, max_output_tokens=5)
    assert response.output_text == expected and response.status == "incomplete"
    events = list(client.responses.create(model=MODEL, input=QUESTION, max_output_tokens=5, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == expected and events[-1].type == "response.incomplete"


def test_the_load_and_unload_forms_reach_hailo_ollama(door: Door) -> None:
    client = ollama.Client(host=door.service.base_url)
    assert client.generate(MODEL, "", keep_alive=0).done_reason == "unload"
    wait_until(lambda: door.ollama.events("unloaded"))
    before = len(door.ollama.events("loaded"))
    assert client.chat(MODEL, [], keep_alive=-1).done_reason == "load"
    assert len(door.ollama.events("loaded")) == before + 1
    assert door.ollama.events("request")[-1]["keep_alive"] == -1


@pytest.mark.parametrize(
    ("path", "body", "param", "words"),
    [
        (
            "/v1/chat/completions",
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "IMAGE"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
            "takes no images",
        ),
        (
            "/v1/chat/completions",
            {"messages": ASK, "response_format": {"type": "json_object"}},
            "response_format",
            "structured output",
        ),
        ("/api/chat", {"messages": ASK, "format": "json"}, "format", "structured output"),
        (
            "/v1/responses",
            {"input": QUESTION, "text": {"format": {"type": "json_object"}}},
            "text.format",
            "JSON",
        ),
        ("/v1/chat/completions", {"messages": ASK, "stop": ["."]}, "stop", "no stop sequences"),
        ("/api/embed", {"input": "a red circle"}, "model", "does not support"),
    ],
)
def test_what_hailo_ollama_cannot_do_is_a_400_naming_the_field_and_nothing_reaches_it(
    door: Door, path: str, body: dict[str, Any], param: str, words: str
) -> None:
    before = len(door.ollama.events("request"))
    image, _ = image_data_url(1)
    sent = json.loads(json.dumps({**body, "model": MODEL}).replace('"IMAGE"', json.dumps(image)))
    reply = door.service.http.post(path, json=sent)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    message = error if isinstance(error, str) else error["message"]
    assert words in message
    if not path.startswith("/api/"):
        assert error["param"] == param
    assert len(door.ollama.events("request")) == before


def test_an_unknown_model_names_both_services_models(door: Door) -> None:
    reply = door.service.http.post("/v1/chat/completions", json={"model": "nope", "messages": ASK})
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"
    assert "qwen2-vl-demo" in reply.json()["error"]["message"] and MODEL in reply.json()["error"]["message"]


def test_a_hailo_ollama_that_stops_answering_is_a_504_and_one_that_is_gone_a_clear_404(
    tmp_path: Path,
) -> None:
    door = Door(tmp_path, inference={"timeout_s": 2})
    try:
        door.direct_answer(1)  # its model loaded
        os.kill(door.ollama.process.pid, signal.SIGSTOP)
        try:
            reply = door.service.http.post("/v1/chat/completions", json={"model": MODEL, "messages": ASK})
        finally:
            os.kill(door.ollama.process.pid, signal.SIGCONT)
        assert reply.status_code == 504, reply.text
        assert "hailo-ollama did not answer within 2 s" in reply.json()["error"]["message"]
        wait_until(lambda: door.door_health() == {"queued": 0, "in_flight": 0})
        door.ollama.stop()
        wait_until(lambda: MODEL not in door.tag_names())
        gone = ollama.Client(host=door.service.base_url)
        with pytest.raises(ollama.ResponseError) as refused:
            gone.chat(MODEL, ASK)
        assert refused.value.status_code == 404 and "is not reachable" in refused.value.error
    finally:
        door.stop()


def _streamed_vision(service: Service, lines: list[str], first: threading.Event) -> None:
    url, _ = image_data_url(3, size=(112, 112))
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What shape?"}]
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 150}  # 3 s on the double
    url = f"{service.base_url}/v1/chat/completions"
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=120) as reply:
        for line in reply.iter_lines():
            if line:
                lines.append(line)
                first.set()


def test_a_text_request_while_vision_holds_the_npu_waits_for_its_turn_and_is_served(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 0, "ollama_clients": "door"}, endless_vlm=True)
    pair.service.wait_ready()
    pair.wait_owner("hailo-vision")
    wait_until(lambda: MODEL in [m["name"] for m in pair.service.http.get("/api/tags").json()["models"]])
    vision: list[str] = []
    started = threading.Event()
    asking = threading.Thread(target=_streamed_vision, args=(pair.service, vision, started), daemon=True)
    asking.start()
    assert started.wait(60)  # the VLM is answering on the NPU
    text: list[Any] = []
    client = ollama.Client(host=pair.service.base_url, timeout=120)
    door = threading.Thread(
        target=lambda: text.append(client.chat(MODEL, ASK, options={"num_predict": 4})), daemon=True
    )
    door.start()
    wait_until(lambda: pair.health()["scheduler"]["door"]["queued"] == 1)
    assert not door_requests(pair.ollama)  # it waits at the door, not in hailo-ollama's queue
    asking.join(120)
    door.join(120)
    assert vision[-1] == "data: [DONE]"
    (reply,) = text
    assert reply.done_reason == "length" and reply.message.content
    assert not pair.ollama.events("load_failed")  # the VLM was given back before hailo-ollama loaded
    (request,) = door_requests(pair.ollama)
    (loaded,) = pair.ollama.events("loaded")
    assert request["at"] <= loaded["at"]
    assert pair.owner() == "hailo-ollama"


def door_requests(fake: RunningOllama) -> list[dict[str, Any]]:
    return [e for e in fake.events("request") if e["path"] == "/api/chat"]
