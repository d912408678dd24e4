"""Who may call what: API keys on every route, the probes and /metrics opened by config, the admin
routes only on loopback or with a key. A remote client is played by a loopback connection that
names it in X-Forwarded-For, which uvicorn trusts from 127.0.0.1 only (a reverse proxy on the Pi)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service import Service

KEY = {"Authorization": "Bearer access-key"}
REMOTE = {"X-Forwarded-For": "192.168.1.50"}


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    api = {"api_keys": ["access-key"], "open_probes": False, "open_metrics": True}
    running = Service(tmp_path_factory.mktemp("locked"), {"clip": {"enabled": False}, "api": api})
    yield running.wait_ready(headers=KEY)
    running.stop()


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/readyz", "/", "/openapi.json", "/v1/models"])
def test_every_route_needs_the_key_with_the_probes_closed(locked: Service, path: str) -> None:
    refused = locked.http.get(path)
    assert refused.status_code == 401
    assert locked.http.get(path, headers=KEY).status_code == 200


def test_metrics_open_by_config(locked: Service) -> None:
    assert locked.http.get("/metrics").status_code == 200


def test_admin_answers_on_loopback_and_elsewhere_only_with_a_key(locked: Service) -> None:
    assert locked.http.get("/admin/status").status_code == 200  # loopback
    assert locked.http.get("/admin/status", headers=REMOTE).status_code == 401
    assert locked.http.get("/admin/status", headers={**REMOTE, **KEY}).status_code == 200


def test_admin_without_keys_answers_loopback_only(service: Service) -> None:
    assert service.http.get("/admin/status").status_code == 200
    remote = service.http.post("/admin/npu/release", headers=REMOTE)
    assert (remote.status_code, remote.json()["error"]["code"]) == (403, "forbidden")
    assert service.http.get("/health", headers=REMOTE).status_code == 200  # the probes stay open
