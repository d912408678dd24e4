"""Ollama's keep_alive reaches the NPU scheduler: an unload gives the VLM back, a load takes it again."""

from __future__ import annotations

from pathlib import Path

import ollama
from service import Service, wait_until


def loaded(service: Service) -> bool:
    return bool(service.http.get("/health").json()["model_loaded"])


def test_open_webuis_unload_releases_the_vlm_and_a_load_brings_it_back(tmp_path: Path) -> None:
    service = Service(tmp_path).wait_ready()
    try:
        wait_until(lambda: loaded(service))  # persistent: loaded at start
        unload = service.http.post(
            "/api/generate", json={"model": "qwen2-vl-demo", "keep_alive": 0, "prompt": ""}
        )
        assert unload.status_code == 200 and unload.json()["done_reason"] == "unload"
        wait_until(lambda: not loaded(service))
        assert "a client asked to unload it (keep_alive 0)" in service.logs()
        client = ollama.Client(host=service.base_url)
        answer = client.generate(model="qwen2-vl-demo", prompt="", keep_alive="10m")  # the load form
        assert answer.done_reason == "load" and loaded(service)
    finally:
        service.stop()
