"""What every route handler shares: config, the worker client, metrics, API keys, lifecycle state."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.requests import Request

from api.metrics import Metrics
from api.recent import RecentRequests
from api.worker_client import WorkerClient
from npu_worker.config import Config
from npu_worker.states import ApiState
from scheduler.driver import Scheduler


@dataclass
class Services:
    """Everything the route handlers share, reachable as request.app.state.services."""

    config: Config
    worker: WorkerClient
    scheduler: Scheduler
    metrics: Metrics = field(default_factory=Metrics)
    recent: RecentRequests = field(default_factory=RecentRequests)
    started: float = field(default_factory=time.monotonic)
    api_keys: frozenset[str] = frozenset()
    state: ApiState = ApiState.STARTING
    in_flight: int = 0

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count one request in flight (the gauge, STATUS=, drain) for as long as the block runs."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
