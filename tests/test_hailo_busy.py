"""The service on an older HailoRT (5.0.1) whose device another process holds, then lets go.

Another process holds the double's device with a GenAI KV cache (as a second LLM/VLM would): the
worker waits in npu_busy, retrying with backoff, and a request that cannot have its turn within
scheduler.turn_timeout_s is answered 503 npu_busy with Retry-After, until the holder exits.
The VLM HEF here never reaches a stop token and the device is slowed per token, so a client that
disconnects is seen to abort the device's generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_service import double_service
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import HeldDevice, make_clip_hef, make_vlm_hef, never_stopping, read_journal
from service import Service, image_data_url, wait_until


def endless_vlm_hef(directory: Path) -> Path:
    """The demo VLM HEF with a stop token the model never produces: it answers until max tokens."""
    return never_stopping(make_vlm_hef(directory, DEMO_VLM_DIR, kv_cache_size=1024))


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hailo-busy")
    env = subprocess_env(
        {},
        HAILO_DOUBLE_STATE_DIR=str(tmp / "device"),
        HAILO_DOUBLE_JOURNAL=str(tmp / "journal.jsonl"),
        HAILO_DOUBLE_VERSION="5.0.1",
        HAILO_DOUBLE_TOKEN_DELAY_S="0.03",
        HAILO_DOUBLE_WAIT_S="0.3",
    )
    config = {
        "backend": "hailo",
        "hailo": {
            "vlm_hef": str(endless_vlm_hef(tmp / "hef")),
            "clip_hef": str(make_clip_hef(tmp / "hef", DEMO_CLIP_DIR, quantized=False)),
            "optimize_memory_on_device": True,  # 5.0.1 has no such argument: ignored with a warning
        },
        "scheduler": {"turn_timeout_s": 1, "load_retry_max_s": 1},
    }
    return {"tmp": tmp, "env": env, "config": config, "journal": tmp / "journal.jsonl"}


@pytest.fixture(scope="module")
def hailo(device: dict[str, Any]) -> Iterator[tuple[Service, dict[str, Any]]]:
    """Started while another process holds the device's KV cache; ready once it lets go."""
    holder = HeldDevice(group="SHARED", kv_cache=True, env=device["env"])
    running = Service(device["tmp"], device["config"], device["env"])
    try:
        device["busy_health"] = wait_until(lambda: busy_health(running), timeout_s=60)
        device["busy_reply"] = wait_until(lambda: npu_busy_reply(running), timeout_s=30)
        holder.stop()
        running.wait_ready(timeout_s=60)
        yield running, device
    finally:
        holder.kill()
        running.stop()


def busy_health(service: Service) -> dict[str, Any] | None:
    if service.process.poll() is not None:
        raise RuntimeError(service.logs())
    try:
        health = service.http.get("/health").json()
    except httpx.TransportError:
        return None
    return health if health.get("detail", "").startswith("the Hailo device is in use") else None


def npu_busy_reply(service: Service) -> httpx.Response:
    """A chat reply while the device is held: it waits for its turn, then 503 npu_busy."""
    reply = service.http.post("/v1/chat/completions", json=ask(3))
    assert reply.status_code == 503, reply.text
    return reply


def ask(max_tokens: int, **fields: Any) -> dict[str, Any]:
    url, _ = image_data_url(1, size=(112, 112))
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Describe it."}]
    return {
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **fields,
    }


def test_a_held_device_gives_503_npu_busy_until_it_is_free(hailo: tuple[Service, dict[str, Any]]) -> None:
    service, device = hailo
    health = device["busy_health"]
    assert health["state"] == "unavailable"
    assert "KV cache is taken by another LLM/VLM" in health["detail"]
    reply = device["busy_reply"]
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "npu_busy"
    assert int(reply.headers["Retry-After"]) >= 1
    assert "npu_busy" in service.logs()  # the worker waited and retried instead of restarting
    recovered = service.http.post("/v1/chat/completions", json=ask(3))
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["choices"][0]["finish_reason"] == "length"
    assert service.http.get("/health").json()["worker_restarts"] == 0


def test_hailort_5_0_features_are_detected_and_worked_around(hailo: tuple[Service, dict[str, Any]]) -> None:
    service, device = hailo
    details = service.http.get("/health").json()["backend_details"]
    assert details["hailort"] == "5.0.1"
    assert details["features"] == []
    # No max_context_capacity() before 5.1.1: the published HEFs' 2048, not the HEF's real 1024.
    assert details["vlm_context_length"] == 2048
    logs = service.logs()
    assert "optimize_memory_on_device ignored" in logs
    assert "cannot report the VLM's context size" in logs
    created = [
        e for e in read_journal(device["journal"]) if e["event"] == "model_created" and e["kind"] == "vlm"
    ]
    assert created and created[-1]["optimize_memory_on_device"] is False


def test_a_client_that_disconnects_aborts_the_devices_generation(
    hailo: tuple[Service, dict[str, Any]],
) -> None:
    service, device = hailo
    with service.http.stream("POST", "/v1/chat/completions", json=ask(300, stream=True)) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # one token seen: hang up
    entries = read_journal(device["journal"])
    call = max(e["call_id"] for e in entries if e["event"] == "generate")

    def ended() -> dict[str, Any] | None:
        found = [
            e
            for e in read_journal(device["journal"])
            if e["event"] == "generation_ended" and e["call_id"] == call
        ]
        return found[0] if found else None

    end = wait_until(ended, timeout_s=20)
    assert end["released_while_generating"] is True
    assert end["device_status"] == "ABORTED"
    assert end["tokens_read"] < 100  # stopped long before its 300 tokens (0.03 s each)
    after = service.http.post("/v1/chat/completions", json=ask(2))
    assert after.status_code == 200


def test_a_device_that_stops_answering_clip_work_restarts_the_worker(tmp_path: Path) -> None:
    """An encoder run that outlives hailo.read_timeout_s is a failed device: 503, then a new worker."""
    config = {"hailo": {"read_timeout_s": 0.2}}  # far shorter than a run: the device looks hung
    # every encoder run takes 2 s on this "device"
    service, _ = double_service(tmp_path, config, HAILO_DOUBLE_INFER_DELAY_S="2")
    service.wait_ready()
    try:
        url, _ = image_data_url(2)
        reply = service.http.post("/v1/embeddings/image", json={"images": [url]})
        assert reply.status_code == 503
        # The error, or the worker's exit right behind it, whichever reaches the API first.
        assert reply.json()["error"]["code"] in ("device_failed", "worker_unavailable")
        wait_until(lambda: service.http.get("/health").json()["worker_restarts"] >= 1, timeout_s=30)
        service.wait_ready()
        logs = service.logs()
        assert "HAILO_TIMEOUT" in logs and "the Hailo device failed during CLIP image encoding" in logs
    finally:
        service.stop()
