"""Start the fake hailo-ollama (tests/fake_ollama.py) on a loopback port and talk to it, alone or paired
with the service on the HailoRT double (test-only)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import make_clip_hef, make_llm_hef, make_vlm_hef, never_stopping
from service import Service, free_port, image_data_url, wait_until

FAKE = Path(__file__).resolve().parent / "fake_ollama.py"
MODEL = "qwen2.5:1.5b"


def endless_llm_hef(directory: Path) -> Path:
    """An LLM HEF whose stop token never comes: an answer runs to num_predict."""
    return never_stopping(make_llm_hef(directory, DEMO_VLM_DIR))


class RunningOllama:
    """One fake hailo-ollama process serving `models` (name -> LLM double HEF) on the double's device."""

    def __init__(self, tmp: Path, models: dict[str, Path], env: dict[str, str], release: str = "5.1.1"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_path = tmp / "ollama-events.jsonl"
        self.log_path = tmp / "ollama.log"
        command = [sys.executable, str(FAKE), "--port", str(self.port), "--events", str(self.events_path)]
        command += ["--release", release]
        for name, hef in models.items():
            command += ["--model", f"{name}={hef}"]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=120, trust_env=False)
        wait_until(self._answers, timeout_s=30)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"fake hailo-ollama exited:\n{self.log_path.read_text()}")
        try:
            return self.http.get("/api/version").status_code == 200
        except httpx.TransportError:
            return False

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = [json.loads(line) for line in self.events_path.read_text().splitlines() if line]
        return [e for e in lines if name is None or e["event"] == name]

    def load(self, model: str = MODEL, keep_alive: int = 300) -> dict[str, Any]:
        reply = self.http.post("/api/generate", json={"model": model, "keep_alive": keep_alive})
        body: dict[str, Any] = reply.json()
        return body

    def chat(self, num_predict: int, model: str = MODEL) -> list[dict[str, Any]]:
        """A streamed chat, read to its end: every NDJSON line."""
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Tell me about shapes."}],
            "options": {"num_predict": num_predict},
        }
        with self.http.stream("POST", "/api/chat", json=body) as reply:
            return [json.loads(line) for line in reply.iter_lines() if line]

    def chat_in_background(self, num_predict: int) -> tuple[threading.Thread, list[list[dict[str, Any]]]]:
        lines: list[list[dict[str, Any]]] = []
        thread = threading.Thread(target=lambda: lines.append(self.chat(num_predict)), daemon=True)
        thread.start()
        return thread, lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        self._log.close()


class Pair:
    """The service (backend hailo) and a fake hailo-ollama on one simulated Hailo-10H."""

    def __init__(
        self,
        tmp: Path,
        scheduler: dict[str, Any],
        ollama_env: dict[str, str] | None = None,
        endless_vlm: bool = False,
    ) -> None:
        settings = {
            "HAILO_DOUBLE_STATE_DIR": str(tmp / "device"),
            "HAILO_DOUBLE_TOKEN_DELAY_S": "0.02",
            "HAILO_DOUBLE_WAIT_S": "0.2",
        }
        env = subprocess_env({}, **settings)
        self.ollama = RunningOllama(tmp, {MODEL: endless_llm_hef(tmp / "hef")}, {**env, **(ollama_env or {})})
        vlm_hef = make_vlm_hef(tmp / "hef", DEMO_VLM_DIR)
        if endless_vlm:
            never_stopping(vlm_hef)
        config = {
            "backend": "hailo",
            "hailo": {
                "vlm_hef": str(vlm_hef),
                "clip_hef": str(make_clip_hef(tmp / "hef", DEMO_CLIP_DIR, quantized=False)),
            },
            "scheduler": {
                "ollama_url": self.ollama.url,
                "ollama_poll_s": 0.2,
                "ollama_timeout_s": 0.5,
                "load_retry_initial_s": 0.2,
                "load_retry_max_s": 0.5,
                **scheduler,
            },
        }
        self.service = Service(tmp, config, env)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.service.http.get("/health").json()
        return body

    def owner(self) -> str:
        return str(self.health()["npu"]["owner"])

    def wait_owner(self, owner: str) -> None:
        wait_until(lambda: self.owner() == owner, timeout_s=60)

    def ask(self) -> httpx.Response:
        url, _ = image_data_url(3, size=(112, 112))
        content = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "What shape is this?"},
        ]
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 4, "temperature": 0}
        return self.service.http.post("/v1/chat/completions", json=body, timeout=120)

    def classify(self) -> httpx.Response:
        url, _ = image_data_url(4, size=(96, 96))
        body = {"image": url, "prompts": ["a red circle", "a blue square"]}
        return self.service.http.post("/v1/classify", json=body, timeout=60)

    def switches(self) -> int:
        return int(self.health()["scheduler"]["switches"])

    def stop(self) -> None:
        self.service.stop()
        self.ollama.stop()
