"""The scheduler at one moment, as /health, /metrics, /admin/status and systemd's STATUS= show it.

A frozen value the driver (scheduler/driver.py) makes on request, so every view reads the same
moment and none of them reaches into the running scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from npu_worker.states import NpuOwner
from scheduler.conditions import Seen
from scheduler.ladder import Ladder
from scheduler.turn_types import Figures, OllamaView, Phase, Policy


@dataclass(frozen=True)
class Snapshot:
    """The scheduler as /health, /metrics, /admin/status and STATUS= show it."""

    policy: Policy
    phase: Phase
    reason: str
    owner: NpuOwner
    owner_since_s: float  # seconds ago
    owner_reason: str
    waiting: int  # vision work waiting for the device
    in_flight: int
    door_waiting: int  # hailo-ollama work at the door waiting for its turn
    door_in_flight: int
    figures: Figures
    release_in_s: float | None
    ollama_url: str
    ollama: OllamaView | None  # None: no hailo-ollama configured
    ladder: Ladder
    seen: Seen | None  # the last sensor readings and levels (None before the first)
