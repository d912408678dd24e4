"""Start the fake hailo-ollama (tests/fake_ollama.py) on a loopback port and talk to it (test-only)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from hailo_double import DEMO_VLM_DIR
from hailo_double_tools import make_llm_hef
from service import free_port, wait_until

FAKE = Path(__file__).resolve().parent / "fake_ollama.py"
MODEL = "qwen2.5:1.5b"


def endless_llm_hef(directory: Path) -> Path:
    """An LLM HEF whose stop token never comes: an answer runs to num_predict."""
    path = make_llm_hef(directory, DEMO_VLM_DIR)
    document = json.loads(path.read_text())
    document["hailo_config"]["stop_token_id"] = [-1]
    path.write_text(json.dumps(document))
    return path


class RunningOllama:
    """One fake hailo-ollama process serving `models` (name -> LLM double HEF) on the double's device."""

    def __init__(self, tmp: Path, models: dict[str, Path], env: dict[str, str], release: str = "5.1.1"):
        self.port = free_port()
        self.mode_path = tmp / "ollama-mode"  # write hang or garbage here to make it misbehave
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_path = tmp / "ollama-events.jsonl"
        self.log_path = tmp / "ollama.log"
        command = [sys.executable, str(FAKE), "--port", str(self.port), "--events", str(self.events_path)]
        command += ["--release", release, "--mode-file", str(self.mode_path)]
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
