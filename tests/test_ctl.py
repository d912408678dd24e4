"""`hailo-visionctl status` against the running service, and against nothing."""

import json
import subprocess
import sys
from pathlib import Path

from service import Service, free_port

CTL = Path(sys.executable).parent / "hailo-visionctl"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CTL), *args], capture_output=True, text=True, timeout=30)


def test_status_of_a_ready_service(service: Service) -> None:
    result = run("status", "--config", str(service.config_path))
    assert result.returncode == 0, result.stderr
    assert f"hailo-vision at {service.base_url}: ready" in result.stdout
    assert "model qwen2-vl-demo (vlm, 2048)" in result.stdout
    facts = json.loads(run("status", "--url", service.base_url, "--json").stdout)
    assert facts["health"]["ready"] is True and {m["id"] for m in facts["models"]} >= {"qwen2-vl-demo"}
    assert "hailo_vision_worker_restarts_total" in facts["metrics"]


def test_status_when_nothing_listens() -> None:
    result = run("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "not reachable" in result.stderr
