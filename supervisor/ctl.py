"""`hailo-visionctl`: ask a running hailo-vision how it is, from the shell.

`hailo-visionctl status` reads /health/ready, /v1/models and /metrics of the service named by the
configuration (or --url) and prints one screen a person can read; `--json` prints the raw facts.
Exit codes: 0 ready, 1 running but not ready, 2 not reachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from npu_worker.config import ConfigError, load_config

TIMEOUT_S = 5.0
_METRICS = (
    ("hailo_vision_requests_in_flight", "in flight"),
    ("hailo_vision_requests_queued", "queued"),
    ("hailo_vision_worker_restarts_total", "worker restarts"),
    ("hailo_vision_model_load_seconds", "model load s"),
    ("hailo_vision_completion_tokens_total", "tokens generated"),
    ("hailo_vision_images_decoded_total", "images decoded"),
)


def _get(url: str, api_key: str | None) -> tuple[int, bytes]:
    # S310: an http URL built from the config's host and port, never a file: or other scheme.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def _metric_values(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def collect(base_url: str, api_key: str | None) -> dict[str, Any]:
    """The service's readiness, models and headline metrics (raises URLError when unreachable)."""
    status, body = _get(f"{base_url}/health/ready", None)
    facts: dict[str, Any] = {"url": base_url, "http_status": status, "health": json.loads(body)}
    models_status, models = _get(f"{base_url}/v1/models", api_key)
    facts["models"] = json.loads(models).get("data", []) if models_status == 200 else []
    metrics_status, metrics = _get(f"{base_url}/metrics", api_key)
    if metrics_status == 200:
        values = _metric_values(metrics.decode())
        facts["metrics"] = {name: values[name] for name, _ in _METRICS if name in values}
    return facts


def render(facts: dict[str, Any]) -> str:
    health = facts["health"]
    lines = [
        f"hailo-vision at {facts['url']}: {health.get('state', '?')}"
        + ("" if health.get("ready") else f" ({health.get('reason') or health.get('detail', '')})"),
        f"  version {health.get('version')}, backend {health.get('backend')}, "
        f"up {health.get('uptime_seconds', 0):.0f} s",
    ]
    for model in facts["models"]:
        extra = model.get("context_length") or model.get("embedding_dim")
        lines.append(f"  model {model['id']} ({model.get('kind', '?')}{f', {extra}' if extra else ''})")
    for name, label in _METRICS:
        if name in facts.get("metrics", {}):
            lines.append(f"  {label}: {facts['metrics'][name]:g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hailo-visionctl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="show whether the service is ready, its models and load")
    status.add_argument("--config", help="config file (to find host and port)")
    status.add_argument("--url", help="base URL, e.g. http://127.0.0.1:11435 (overrides the config)")
    status.add_argument("--api-key", help="API key, when the service requires one")
    status.add_argument("--json", action="store_true", help="print the facts as JSON")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hailo-visionctl: {exc}", file=sys.stderr)
        return 2
    wildcard = ("0.0.0.0", "::", "")  # noqa: S104 - recognised to reach it on loopback, not bound
    host = "127.0.0.1" if config.api.host in wildcard else config.api.host
    base_url = (args.url or f"http://{host}:{config.api.port}").rstrip("/")
    api_key = args.api_key or (config.api.api_keys[0] if config.api.api_keys else None)
    try:
        facts = collect(base_url, api_key)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        print(f"hailo-vision at {base_url}: not reachable ({exc})", file=sys.stderr)
        return 2
    print(json.dumps(facts, indent=2) if args.json else render(facts))
    return 0 if facts["health"].get("ready") else 1


if __name__ == "__main__":
    sys.exit(main())
