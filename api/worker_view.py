"""The current NPU worker as the API last heard of it: its heartbeat, read through typed properties.

Before a worker's first heartbeat (at start, or after a restart) every property has its "nothing
known yet" value, so /health, /admin/status and the scheduler never need to test for None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from npu_worker.backend import ModelInfo, Placement
from npu_worker.protocol import Heartbeat
from npu_worker.states import WorkerState


@dataclass
class WorkerView:
    """What the API knows of the current worker, from its heartbeats (`beat` is None before the
    first heartbeat of the current worker)."""

    epoch: str | None = None
    detail: str = "waiting for the NPU worker to start"
    beat: Heartbeat | None = None
    last_seen: float = 0.0

    @property
    def state(self) -> WorkerState | None:
        return self.beat.state if self.beat is not None else None

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        return self.beat.models if self.beat is not None else ()

    @property
    def queued(self) -> int:
        return self.beat.queued if self.beat is not None else 0

    @property
    def backend(self) -> str:
        return self.beat.backend if self.beat is not None else ""

    @property
    def model_load_seconds(self) -> float:
        return self.beat.model_load_seconds if self.beat is not None else 0.0

    @property
    def details(self) -> dict[str, Any]:
        return self.beat.details if self.beat is not None else {}

    @property
    def clip_placement(self) -> Placement:
        return self.beat.clip_placement if self.beat is not None else Placement.NONE
