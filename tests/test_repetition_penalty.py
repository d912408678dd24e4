"""llama.cpp's repetition penalty (Ollama's repeat_penalty, vLLM's repetition_penalty) reaches the sampler.

On the Hailo backend it is the device's own multiplicative penalty: the HailoRT double's journal shows
what VLM.generate() was given. On the CPU backend the sampler applies it (tests/test_sampling.py).
"""

from __future__ import annotations

from pathlib import Path

import ollama
import pytest
from double_service import double_service
from hailo_double_tools import read_journal
from openai import OpenAI
from service import Service, image_data_url


def test_frigates_ollama_options_and_vllms_extension_reach_the_device(tmp_path: Path) -> None:
    service, journal = double_service(tmp_path, {"model": {"warmup": False}})
    service.wait_ready()
    try:
        url, _ = image_data_url(4, size=(112, 112))
        frigate = ollama.Client(host=service.base_url).generate(  # as Frigate's Ollama provider asks
            model="qwen2-vl-demo",
            prompt="What color is the shape?",
            images=[url.split(",", 1)[1]],
            options={"temperature": 0.5, "repeat_penalty": 1.05, "presence_penalty": 0.3},
        )
        assert frigate.response
        OpenAI(base_url=f"{service.base_url}/v1", api_key="unused", max_retries=0).chat.completions.create(
            model="qwen2-vl-demo",
            messages=[{"role": "user", "content": "Hello!"}],
            max_tokens=4,
            extra_body={"repetition_penalty": 1.2},
        )
        sent = [e["args"]["frequency_penalty"] for e in read_journal(journal) if e["event"] == "generate"]
        assert sent == [1.05, 1.2]
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/generate", {"prompt": "hi", "options": {"repeat_penalty": 0}}, "options.repeat_penalty"),
        ("/api/generate", {"prompt": "hi", "options": {"repeat_last_n": -2}}, "options.repeat_last_n"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "repetition_penalty": -1},
            "repetition_penalty",
        ),
    ],
)
def test_a_penalty_out_of_range_is_a_400_naming_it(
    service: Service, path: str, body: dict, param: str
) -> None:
    reply = service.http.post(path, json={"model": "qwen2-vl-demo", **body})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert param in error if path.startswith("/api/") else error["param"] == param  # Ollama's error is text
