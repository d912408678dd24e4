"""`hailo-visionctl` against the running service (its GET /admin/status), and against nothing."""

import json
import re
import subprocess
import sys
from pathlib import Path

from service import Service, free_port

CTL = Path(sys.executable).parent / "hailo-visionctl"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CTL), *args], capture_output=True, text=True, timeout=30)


def test_status_of_a_ready_service(service: Service) -> None:
    result = run("status", "--config", str(service.config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("hailo-vision ready, up ")
    assert f"127.0.0.1:{service.port}, backend onnx, 0 worker restarts" in result.stdout
    # Loaded on the CPU, or released by an earlier test of the shared service (keep_alive 0).
    assert re.search(r"qwen2-vl-demo \(vlm\) (cpu|not loaded)", result.stdout), result.stdout
    assert "clip-demo (clip) cpu" in result.stdout
    document = json.loads(run("status", "--url", service.base_url, "--json").stdout)
    assert document["schema"] == 1 and document["service"]["state"] == "ready"
    assert document["service"]["pid"] == service.process.pid  # the supervisor's, as systemd shows it
    assert {m["id"] for m in document["models"]} >= {"qwen2-vl-demo", "clip-demo"}


def test_models_of_a_ready_service(service: Service) -> None:
    result = run("models", "--url", service.base_url)
    assert result.returncode == 0, result.stderr
    assert "qwen2-vl-demo" in result.stdout and "clip-demo" in result.stdout


def test_status_when_nothing_listens() -> None:
    result = run("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "hailo-vision down" in result.stdout
