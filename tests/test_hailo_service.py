"""The running service with `backend: hailo` on the HailoRT double (HailoRT 5.2.0, demo models).

The double computes with the same demo ONNX models as the CPU backend, so for an image already at
the HEF's frame size (112x112) both backends must give the same greedy answer and the same usage;
the ONNX service (conftest's `service`) is the reference. What the worker asked of the device is
read from the double's journal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import make_clip_hef, make_vlm_hef, read_journal
from service import Service, image_data_url

FRAME = (112, 112)  # the demo VLM HEF's frame: images of this size reach both backends unchanged


@pytest.fixture(scope="module")
def hailo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("hailo-service")
    config = {
        "backend": "hailo",
        "hailo": {
            "vlm_hef": str(make_vlm_hef(tmp / "hef", DEMO_VLM_DIR)),
            "clip_hef": str(make_clip_hef(tmp / "hef", DEMO_CLIP_DIR, quantized=True)),
        },
    }
    env = subprocess_env(
        {},
        HAILO_DOUBLE_STATE_DIR=str(tmp / "device"),
        HAILO_DOUBLE_JOURNAL=str(tmp / "journal.jsonl"),
        HAILO_DOUBLE_VERSION="5.2.0",
    )
    running = Service(tmp, config, env).wait_ready()
    running.journal = tmp / "journal.jsonl"  # type: ignore[attr-defined]
    yield running
    running.stop()


def journal(service: Service, event: str) -> list[dict[str, Any]]:
    return [e for e in read_journal(service.journal) if e["event"] == event]  # type: ignore[attr-defined]


def ask(url: str, question: str = "What color is the shape?", **fields: Any) -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": question}]
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 16, "temperature": 0, **fields}


def test_answers_and_usage_equal_the_cpu_backends(hailo: Service, service: Service) -> None:
    for seed in (1, 2):
        url, _ = image_data_url(seed, size=FRAME)
        body = ask(url)
        on_hailo = hailo.http.post("/v1/chat/completions", json=body)
        on_cpu = service.http.post("/v1/chat/completions", json=body)
        assert on_hailo.status_code == 200, on_hailo.text
        mine, reference = on_hailo.json(), on_cpu.json()
        assert mine["choices"][0]["message"]["content"] == reference["choices"][0]["message"]["content"]
        assert mine["choices"][0]["finish_reason"] == reference["choices"][0]["finish_reason"]
        assert mine["usage"] == reference["usage"]
        assert mine["choices"][0]["message"]["content"].strip()
        assert "<|" not in mine["choices"][0]["message"]["content"]  # special tokens stripped


def test_stop_strings_cut_the_text_as_on_the_cpu_backend(hailo: Service, service: Service) -> None:
    url, _ = image_data_url(1, size=FRAME)
    full = service.http.post("/v1/chat/completions", json=ask(url)).json()["choices"][0]["message"]["content"]
    stop = full[1:3]  # inside the answer: everything from it on is cut
    body = ask(url, stop=[stop, "never there"])
    on_hailo, on_cpu = (s.http.post("/v1/chat/completions", json=body).json() for s in (hailo, service))
    assert on_hailo["choices"][0]["message"]["content"] == full[: full.index(stop)]
    assert on_hailo["choices"][0] == on_cpu["choices"][0]


def test_streaming_sends_the_same_text_and_usage(hailo: Service) -> None:
    url, _ = image_data_url(3, size=FRAME)
    whole = hailo.http.post("/v1/chat/completions", json=ask(url)).json()
    chunks = []
    body = ask(url, stream=True, stream_options={"include_usage": True})
    with hailo.http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == whole["usage"]
    assert whole["usage"]["completion_tokens"] >= 1


def test_every_request_clears_the_context_and_sends_message_dicts_and_frames(hailo: Service) -> None:
    url, _ = image_data_url(4, size=(300, 180))  # not the frame size: resized for the device
    body = ask(url, "How many shapes are there?")
    body["messages"].insert(0, {"role": "system", "content": "Answer in one word."})
    assert hailo.http.post("/v1/chat/completions", json=body).status_code == 200
    assert hailo.http.post("/v1/chat/completions", json=body).status_code == 200
    calls = journal(hailo, "generate")[-2:]
    cleared = journal(hailo, "context_cleared")
    assert len(cleared) >= len(journal(hailo, "generate"))  # one clear per generation, at least
    for call in calls:
        assert call["prompt"] == [
            {"role": "system", "content": [{"type": "text", "text": "Answer in one word."}]},
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": "How many shapes are there?"}],
            },
        ]
        assert call["frames"] == [{"shape": [*FRAME, 3], "dtype": "uint8", "c_contiguous": True}]
        assert "error" not in call  # a system message is only accepted on a fresh context


def test_greedy_and_sampling_reach_the_device_as_documented(hailo: Service) -> None:
    url, _ = image_data_url(5, size=FRAME)
    assert hailo.http.post("/v1/chat/completions", json=ask(url)).status_code == 200
    greedy = journal(hailo, "generate")[-1]["args"]
    assert greedy["do_sample"] is False
    assert "temperature" not in greedy and "top_k" not in greedy
    assert greedy["frequency_penalty"] == 1.0  # the device's repetition penalty, off
    sampled = ask(url, temperature=0.8, top_p=0.9, seed=11, max_tokens=5)
    assert hailo.http.post("/v1/chat/completions", json=sampled).status_code == 200
    args = journal(hailo, "generate")[-1]["args"]
    assert args == {
        "temperature": 0.8,
        "top_p": 0.9,
        "top_k": 1000,
        "frequency_penalty": 1.0,
        "max_generated_tokens": 5,
        "do_sample": True,
        "seed": 11,
    }


@pytest.mark.parametrize(
    ("field", "value"), [("frequency_penalty", 0.5), ("presence_penalty", -0.3), ("min_tokens", 2)]
)
def test_what_the_device_cannot_do_is_refused_naming_the_parameter(
    hailo: Service, field: str, value: float
) -> None:
    url, _ = image_data_url(6, size=FRAME)
    before = len(journal(hailo, "generate"))
    response = hailo.http.post("/v1/chat/completions", json=ask(url, **{field: value}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and error["type"] == "invalid_request_error"
    assert len(journal(hailo, "generate")) == before  # refused before reaching the device
    zero = hailo.http.post("/v1/chat/completions", json=ask(url, **{field: 0}))
    assert zero.status_code == 200


def test_health_shows_the_hailort_release_and_its_features(hailo: Service) -> None:
    health = hailo.http.get("/health").json()
    assert health["backend"] == "hailo"
    details = health["backend_details"]
    assert details["hailort"] == "5.2.0"
    assert {"optimize_memory_on_device", "videos", "max_context_capacity"} <= set(details["features"])
    assert details["vdevice_group"] == "SHARED"
    assert details["vlm_frame_shape"] == [*FRAME, 3]
    assert details["vlm_image_tokens_per_frame"] == 16
    models = {m["id"]: m for m in hailo.http.get("/v1/models").json()["data"]}
    assert models["qwen2-vl-demo"]["backend"] == "hailort"
    assert models["qwen2-vl-demo"]["context_length"] == 2048  # max_context_capacity() of the HEF
    assert models["clip-demo"]["embedding_dim"] == 64
    assert "hailort_detected" in hailo.logs() and "version=5.2.0" in hailo.logs()


def test_clip_through_the_api_matches_the_cpu_backend(hailo: Service, service: Service) -> None:
    images = [image_data_url(seed, n_shapes=1)[0] for seed in (7, 8, 9)]
    body = {"images": images}
    on_hailo = hailo.http.post("/v1/embeddings/image", json=body)
    assert on_hailo.status_code == 200, on_hailo.text
    mine = np.array([d["embedding"] for d in on_hailo.json()["data"]])
    reference = np.array(
        [d["embedding"] for d in service.http.post("/v1/embeddings/image", json=body).json()["data"]]
    )
    cosines = np.sum(mine * reference, axis=1)
    assert np.all(cosines > 0.995), cosines  # uint8 output, dequantised on the way out
    assert not np.allclose(mine, reference, atol=1e-6)  # it did go through the quantised encoder
    prompts = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]
    classify = {"image": images[0], "prompts": prompts}
    top_hailo = hailo.http.post("/v1/classify", json=classify).json()["classifications"][0]["text"]
    top_cpu = service.http.post("/v1/classify", json=classify).json()["classifications"][0]["text"]
    assert top_hailo == top_cpu
    assert journal(hailo, "infer")  # the image encoder ran on the (simulated) device
