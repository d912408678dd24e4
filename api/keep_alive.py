"""keep_alive: how long a client wants a model kept loaded after its request, and when it expires.

Clients send Ollama's forms: seconds as a number (-1 = forever), or a Go duration string ("5m",
"1h30m", "300s", "0"). Each becomes one typed value, seconds: None = the server's default, < 0 =
forever, 0 = unload now. `apply_keep_alive` is the one place that intent goes, and `expires_at` the
one place /api/ps reads a model's expiry from.

The NPU scheduler (scheduler/) decides who holds the Hailo-10H, hailo-vision or hailo-ollama, and
takes a VLM's keep_alive as an intent within its policy (TurnPolicy.keep_alive: 0 gives the VLM back
after the running work, N seconds holds off the idle release, -1 pins it only where the policy lets a
client do that). CLIP takes no turns: its keep_alive changes nothing. `expires_at` reads the
scheduler's own idle-release estimate.
"""

from __future__ import annotations

import datetime
import logging
import re

from api.services import Services
from npu_worker.backend import ModelInfo
from npu_worker.logs import log_event

log = logging.getLogger("api.keep_alive")

KeepAlive = float | None  # seconds; None = server default, < 0 = forever, 0 = unload now

# Go's time.ParseDuration units, in seconds
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:\d+\.?\d*|\.\d+)"
_UNIT = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
DURATION = rf"^[+-]?(?:0|(?:{_NUMBER}(?:{_UNIT}))+)$"
_PIECE = re.compile(rf"({_NUMBER})({_UNIT})")
# Ollama's "forever": now plus the longest Go duration (2^63 - 1 ns, about 292 years)
FOREVER = datetime.timedelta(microseconds=(2**63 - 1) // 1000)


def duration_seconds(text: str) -> float:
    """Seconds of a Go duration string ("1h30m", "-1s", "0"); the caller checked it against DURATION."""
    sign = -1.0 if text.startswith("-") else 1.0
    return sign * sum(float(number) * _UNITS[unit] for number, unit in _PIECE.findall(text))


def apply_keep_alive(services: Services, model: ModelInfo, keep_alive: KeepAlive) -> None:
    """Hand a request's keep_alive for `model` to the NPU scheduler (the VLM's; CLIP's changes nothing)."""
    if keep_alive is None or model.kind != "vlm":
        return
    level = logging.INFO if keep_alive == 0 else logging.DEBUG
    intent = "unload" if keep_alive == 0 else "forever" if keep_alive < 0 else f"{keep_alive:g}s"
    log_event(log, "keep_alive", level, model=model.id, intent=intent)
    services.scheduler.keep_alive(keep_alive)


def expires_at(services: Services, model: ModelInfo) -> datetime.datetime:
    """When `model` will be unloaded if no work comes, as /api/ps reports it (timezone-aware, so its
    ISO form parses everywhere).

    The VLM: when the scheduler would give the NPU back for idleness; "forever" (Ollama's value for
    keep_alive -1) when it would not (persistent, exclusive). CLIP stays loaded (on the CPU while the
    NPU is given back), so "forever".
    """
    now = datetime.datetime.now(datetime.UTC)
    release_in = services.scheduler.snapshot().release_in_s if model.kind == "vlm" else None
    return now + (FOREVER if release_in is None else datetime.timedelta(seconds=release_in))
