"""`hailo-visionctl`: what the NPU is doing and why a request is slow, from the shell.

`status` draws one screen from the service's GET /admin/status (`--json` prints the document for
scripts, `--watch` redraws it); `models` lists what hailo-vision and hailo-ollama serve; `release`
gives the NPU back now and `load` takes it for hailo-vision's models (POST /admin/npu/...). The
service is the one the configuration names (or --url); loopback needs no key, elsewhere the API key.
Exit codes of `status`: 0 ready, 1 degraded, loading or draining, 2 down or unavailable; of the other
commands: 0 done, 1 the service refused (its message on stderr), 2 not reachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from npu_worker.config import ConfigError
from npu_worker.config_load import load_config
from supervisor.ctl_client import AdminError, Endpoint, Unreachable
from supervisor.ctl_systemd import systemd_facts
from supervisor.ctl_view import down_view, exit_code, models_view, status_view


def snapshot(endpoint: Endpoint) -> tuple[dict[str, Any], RenderableType, int]:
    """The status document (or a "down" one), its screen and its exit code."""
    try:
        status = endpoint.status()
    except (Unreachable, AdminError) as error:
        systemd = systemd_facts()
        said = str(error)
        down = {"service": {"state": "down"}, "url": endpoint.base_url, "error": said, "systemd": systemd}
        return down, down_view(endpoint.base_url, said, systemd), exit_code(None)
    return status, status_view(status), exit_code(status)


def status(endpoint: Endpoint, console: Console, as_json: bool) -> int:
    document, screen, code = snapshot(endpoint)
    _show(console, document, as_json, screen)
    return code


def _show(console: Console, document: Any, as_json: bool, screen: RenderableType) -> None:
    if as_json:
        console.print_json(json.dumps(document))
    else:
        console.print(screen)


def watch(endpoint: Endpoint, console: Console, as_json: bool, interval_s: float) -> int:
    """Redraw the status every `interval_s` (JSON: one line each) until Ctrl-C; the last exit code."""
    code = 2
    try:
        if as_json:
            while True:
                document, _, code = snapshot(endpoint)
                console.out(json.dumps(document), highlight=False)
                time.sleep(interval_s)
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while True:
                _, screen, code = snapshot(endpoint)
                live.update(screen, refresh=True)
                time.sleep(interval_s)
    except KeyboardInterrupt:
        return code


def models(endpoint: Endpoint, console: Console, as_json: bool) -> int:
    listed = endpoint.status()["models"]
    _show(console, listed, as_json, models_view(listed))
    return 0


def npu(endpoint: Endpoint, console: Console, as_json: bool, action: str) -> int:
    answer = endpoint.npu(action)
    _show(console, answer, as_json, Text(f"NPU: {answer['owner']}: {answer['detail']}"))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hailo-visionctl", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("status", "what the service and the NPU are doing, and why requests wait"),
        ("models", "the models hailo-vision and hailo-ollama serve, loaded or not, and where"),
        ("release", "give the NPU back now (hailo-vision unloads its NPU models)"),
        ("load", "take the NPU for hailo-vision's models now"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--config", metavar="FILE", help="config file, to find host, port and key")
        command.add_argument("--url", help="base URL, e.g. http://127.0.0.1:11435 (overrides the config)")
        command.add_argument("--api-key", help="API key (needed off loopback when the service has keys)")
        command.add_argument("--json", action="store_true", help="print JSON for scripts")
        if name == "status":
            command.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
            command.add_argument("--interval", type=float, default=2.0, metavar="S", help="--watch period")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        endpoint = Endpoint.of(load_config(args.config), args.url, args.api_key)
    except ConfigError as exc:
        print(f"hailo-visionctl: {exc}", file=sys.stderr)
        return 2
    console = Console()
    if args.command == "status":
        if args.watch:
            return watch(endpoint, console, args.json, args.interval)
        return status(endpoint, console, args.json)
    try:
        if args.command == "models":
            return models(endpoint, console, args.json)
        return npu(endpoint, console, args.json, args.command)
    except Unreachable as exc:
        print(f"hailo-visionctl: hailo-vision is not reachable: {exc}", file=sys.stderr)
        return 2
    except AdminError as exc:
        print(f"hailo-visionctl: {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
