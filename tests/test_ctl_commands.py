"""`hailo-visionctl`'s commands and exit codes against a stand-in admin endpoint serving fixture JSON."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from service import free_port

from supervisor import ctl

FIXTURES = Path(__file__).parent / "fixtures" / "ctl"


class Admin(ThreadingHTTPServer):
    """Answers GET /admin/status with `status` and POST /admin/npu/* with `npu` (status code, body)."""

    status: dict[str, Any]
    npu: tuple[int, dict[str, Any]] = (200, {"owner": "nobody", "detail": "released"})
    seen: list[tuple[str, str, str | None]]


class Handler(BaseHTTPRequestHandler):
    server: Admin

    def do_GET(self) -> None:
        self._answer(200, self.server.status)

    def do_POST(self) -> None:
        self._answer(*self.server.npu)

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def admin() -> Iterator[Admin]:
    server = Admin(("127.0.0.1", 0), Handler)
    server.status = json.loads((FIXTURES / "ready.json").read_text())
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(admin: Admin) -> str:
    return f"http://127.0.0.1:{admin.server_address[1]}"


@pytest.mark.parametrize(("state", "code"), [("ready", 0), ("degraded", 1), ("unavailable", 2)])
def test_status_exit_code_is_the_service_state(
    admin: Admin, capsys: pytest.CaptureFixture[str], state: str, code: int
) -> None:
    admin.status["service"]["state"] = state
    assert ctl.main(["status", "--url", url(admin)]) == code
    assert capsys.readouterr().out.startswith(f"hailo-vision {state}")
    assert admin.seen == [("GET", "/admin/status", None)]


def test_status_json_is_the_document(admin: Admin, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["status", "--url", url(admin), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == admin.status


def test_status_of_nothing_listening_is_down_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    where = f"http://127.0.0.1:{free_port()}"
    assert ctl.main(["status", "--url", where]) == 2
    assert capsys.readouterr().out.startswith(f"hailo-vision down: {where}")
    assert ctl.main(["status", "--url", where, "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["service"] == {"state": "down"} and document["url"] == where


def test_release_and_load_post_with_the_api_key(admin: Admin, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["release", "--url", url(admin), "--api-key", "k1"]) == 0
    assert capsys.readouterr().out == "NPU: nobody: released\n"
    admin.npu = (200, {"owner": "hailo-vision", "detail": "loaded qwen2-vl-2b"})
    assert ctl.main(["load", "--url", url(admin), "--api-key", "k1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["owner"] == "hailo-vision"
    assert admin.seen == [
        ("POST", "/admin/npu/release", "Bearer k1"),
        ("POST", "/admin/npu/load", "Bearer k1"),
    ]


def test_a_refused_release_exits_1_with_the_services_message(
    admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"message": "a request is in flight", "type": "conflict", "code": "npu_in_use", "param": None}
    admin.npu = (409, {"error": error})
    assert ctl.main(["release", "--url", url(admin)]) == 1
    assert "release: a request is in flight (HTTP 409, npu_in_use)" in capsys.readouterr().err


def test_models_lists_both_servers(admin: Admin, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["models", "--url", url(admin)]) == 0
    out = capsys.readouterr().out
    assert "qwen2-vl-2b" in out and "qwen2.5:1.5b" in out and "hailo-ollama" in out


def test_commands_other_than_status_exit_2_when_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["release", "--url", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "not reachable" in capsys.readouterr().err


def test_watch_redraws_until_interrupted_and_exits_with_the_last_state(
    admin: Admin, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    states = iter(["degraded"])

    def next_round(_: float) -> None:
        state = next(states, None)
        if state is None:
            raise KeyboardInterrupt
        admin.status["service"]["state"] = state

    monkeypatch.setattr(ctl.time, "sleep", next_round)
    assert ctl.main(["status", "--url", url(admin), "--watch", "--json"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["service"]["state"] for line in lines] == ["ready", "degraded"]
    monkeypatch.setattr(ctl.time, "sleep", next_round)
    assert ctl.main(["status", "--url", url(admin), "--watch"]) == 1
    assert "hailo-vision degraded" in capsys.readouterr().out
