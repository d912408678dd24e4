"""What `hailo-visionctl` shows: the status screen, the model table, and the exit code of a status.

The status screen answers two questions on one screen: what is the NPU doing (owner, since when and
why, hailo-ollama's side) and why is my request slow (the `slow_reasons`, most pressing first, then
the facts behind them: queue, scheduler rung, latency, temperature, memory, the last errors).
Everything is drawn from the schema-1 document of GET /admin/status; nothing here asks the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from npu_worker.states import Rung

SHOWN_ERRORS = 3
STATE_STYLE = {"ready": "bold green", "unavailable": "bold red", "down": "bold red"}
LEVEL_STYLE = {"normal": "green", "warning": "yellow", "pressure": "yellow", "critical": "bold red"}

Status = Mapping[str, Any]


def exit_code(status: Status | None) -> int:
    """0 ready, 1 degraded/loading/draining, 2 unreachable (None) or unavailable."""
    if status is None:
        return 2
    state = status["service"]["state"]
    return 0 if state == "ready" else 2 if state == "unavailable" else 1


def duration(seconds: float | None) -> str:
    """A person's reading of a span: 42 s, 12m 05s, 2h 13m."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f} s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def clock(iso: str | None) -> str:
    """An ISO-8601 instant as local wall-clock time (HH:MM:SS), or "-"."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso


def slow_reasons(status: Status) -> list[str]:
    """Why a request waits right now, most pressing first; empty when nothing holds requests back."""
    service, npu, scheduler = status["service"], status["npu"], status["scheduler"]
    thermal, memory = status["thermal"], status["memory"]
    reasons: list[str] = []
    if service["state"] in ("loading", "unavailable", "draining"):
        reasons.append(f"the service is {service['state']}: {'; '.join(service['reasons']) or 'see errors'}")
    if npu["owner"] not in ("hailo-vision", "nobody") and service["backend"] == "hailo":
        back = scheduler["release_in_s"]
        reasons.append(
            f"the NPU is with {npu['owner']} ({npu['reason']})"
            + (f"; it comes back in about {duration(back)}" if back is not None else "")
        )
    if scheduler["queued"]:
        reasons.append(
            f"{scheduler['queued']} request(s) queued behind {scheduler['in_flight']} in flight "
            f"(limit {scheduler['max_queue']})"
        )
    if scheduler["rung"] != Rung.NORMAL:  # (on the normal rung its reasons explain, not excuse)
        said = ", ".join(scheduler["reasons"]) or "no reason given"
        reasons.append(f"scheduler degraded to rung {scheduler['rung']}: {said}")
    if thermal["throttled"]:
        reasons.append(f"throttled: {', '.join(thermal['throttled'])}")
    if memory["level"] not in ("normal", "unknown"):
        reasons.append(f"memory {memory['level']}: {_memory(memory)}")
    return reasons


def status_view(status: Status) -> RenderableType:
    """The one-screen status: a headline, then one labelled row per subject."""
    service = status["service"]
    headline = Text.assemble(
        ("hailo-vision ", "bold"),
        (service["state"], STATE_STYLE.get(service["state"], "bold yellow")),
        f", up {duration(service['uptime_s'])} (version {service['version']}, pid {service['pid']})",
    )
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column()
    # Text, not markup: ids, reasons and messages are the service's, "[" and ":" included.
    rows.add_row(
        "Service",
        Text(
            f"{service['listen']}, backend {service['backend']}, {service['worker_restarts']} worker restarts"
        ),
    )
    if service["reasons"]:
        rows.add_row("Why", Text("; ".join(service["reasons"])))
    rows.add_row("Slow?", _slow(status))
    rows.add_row("NPU", _npu(status["npu"]))
    rows.add_row("Models", Text(_models_line(status["models"])))
    rows.add_row("Scheduler", Text(_scheduler(status["scheduler"])))
    rows.add_row(f"Last {status['requests']['window_s']:g} s", Text(_requests(status["requests"])))
    rows.add_row("Thermal", _thermal(status["thermal"]))
    memory = status["memory"]
    rows.add_row("Memory", Text(f"{memory['level']}: {_memory(memory)}", style=_level_style(memory["level"])))
    rows.add_row("Errors", _errors(status["errors"]))
    return Group(headline, rows)


def down_view(where: str, error: str, systemd: Mapping[str, str] | None) -> RenderableType:
    """The service does not answer: say so, and what systemd says where it runs."""
    lines = Text.assemble(("hailo-vision ", "bold"), ("down", STATE_STYLE["down"]), f": {where} {error}")
    if systemd is None:
        return Group(lines, Text("systemd is not running here; start it with `hailo-vision serve`"))
    said = (
        f"systemd: {systemd.get('is-active', '?')} ({systemd.get('ActiveState', '?')}/"
        f"{systemd.get('SubState', '?')}, result {systemd.get('Result', '?')}, exit status "
        f"{systemd.get('ExecMainStatus', '?')}, {systemd.get('NRestarts', '?')} restart(s))"
    )
    status_text = systemd.get("StatusText")
    return Group(
        lines,
        Text(said),
        *([Text(f"last status: {status_text}")] if status_text else []),
        Text("see: journalctl -u hailo-vision -b", style="dim"),
    )


def models_view(models: list[Mapping[str, Any]]) -> RenderableType:
    """Every model either server offers: kind, who serves it, whether loaded and where."""
    table = Table("model", "kind", "served by", "loaded", "placement", box=None, header_style="bold")
    for model in models:
        loaded = "yes" if model["loaded"] else "no"
        cells = (model["id"], model["kind"], model["served_by"], loaded, model["placement"])
        table.add_row(*(Text(str(cell)) for cell in cells))
    return table


def _level_style(level: str) -> str:
    return LEVEL_STYLE.get(level, "dim")


def _slow(status: Status) -> Text:
    reasons = slow_reasons(status)
    if not reasons:
        return Text("nothing holds requests back", style="green")
    return Text("\n".join(reasons), style="yellow")


def _npu(npu: Mapping[str, Any]) -> Text:
    owner = Text.assemble(
        (npu["owner"], "bold"),
        f" since {clock(npu['since'])} ({duration(npu['since_s'])}): {npu['reason']}",
    )
    ollama = npu["ollama"]
    if ollama is None:
        return owner.append("\nhailo-ollama: not configured", style="dim")
    if not ollama["reachable"]:
        return owner.append(f"\nhailo-ollama at {ollama['url']}: not reachable", style="yellow")
    busy = "busy" if ollama["busy"] else "idle"
    models = ", ".join(ollama["models"]) or "-"
    return owner.append(f"\nhailo-ollama at {ollama['url']}: {busy}, models {models}")


def _models_line(models: list[Mapping[str, Any]]) -> str:
    def one(model: Mapping[str, Any]) -> str:
        where = model["placement"] if model["loaded"] else "not loaded"
        by = "" if model["served_by"] == "hailo-vision" else f", {model['served_by']}"
        return f"{model['id']} ({model['kind']}{by}) {where}"

    return "\n".join(one(m) for m in models) or "-"


def _scheduler(scheduler: Mapping[str, Any]) -> str:
    release = scheduler["release_in_s"]
    return (
        f"policy {scheduler['policy']}, rung {scheduler['rung']}; queued {scheduler['queued']}/"
        f"{scheduler['max_queue']}, in flight {scheduler['in_flight']}; NPU switches {scheduler['switches']} "
        f"({duration(scheduler['switch_seconds'])})"
        + (f"; releases the NPU in {duration(release)}" if release is not None else "")
    )


def _requests(requests: Mapping[str, Any]) -> str:
    by_status = ", ".join(f"{code}: {n}" for code, n in sorted(requests["by_status"].items()))
    tokens = "-" if requests["tokens_per_s"] is None else f"{requests['tokens_per_s']:.1f}"
    return (
        f"{requests['count']} requests ({by_status or 'none'}); p50 {latency(requests['p50_ms'])}, "
        f"p95 {latency(requests['p95_ms'])}; {tokens} tokens/s"
    )


def _celsius(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} °C"


def _thermal(thermal: Mapping[str, Any]) -> Text:
    throttled = thermal["throttled"]
    said = "unknown" if throttled is None else ", ".join(throttled) or "no"
    return Text(
        f"{thermal['level']}: SoC {_celsius(thermal['soc_c'])}, Hailo {_celsius(thermal['hailo_c'])}; "
        f"throttled {said}",
        style=_level_style(thermal["level"]),
    )


def _memory(memory: Mapping[str, Any]) -> str:
    rss, available = memory["service_rss_mb"], memory["available_mb"]
    return (
        f"service {'-' if rss is None else f'{rss:.0f}'} of {memory['limit_mb']} MiB; "
        f"{'-' if available is None else f'{available:.0f}'} MiB available (floor {memory['floor_mb']} MiB)"
    )


def _errors(errors: list[Mapping[str, Any]]) -> Text:
    if not errors:
        return Text("none", style="green")
    shown = sorted(errors, key=lambda e: str(e["at"]))[-SHOWN_ERRORS:]
    return Text("\n".join(f"{clock(e['at'])} {e['code']}: {e['message']}" for e in shown), style="red")
