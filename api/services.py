"""What every route handler shares: config, the worker client, metrics, API keys, lifecycle state."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
from starlette.requests import Request

from api.metrics import Metrics
from api.recent import RecentRequests
from api.worker_client import WorkerClient
from npu_worker.config import Config
from npu_worker.states import ApiState
from scheduler.driver import Scheduler


def service_started() -> float:
    """When the service started, on the monotonic clock: its supervisor's start (the API's parent), so
    a restarted API does not reset the uptime that /health and hailo-visionctl show."""
    now = time.monotonic()
    try:
        return now - max(0.0, time.time() - psutil.Process(os.getppid()).create_time())
    except psutil.Error:
        return now


@dataclass
class Services:
    """Everything the route handlers share, reachable as request.app.state.services."""

    config: Config
    worker: WorkerClient
    scheduler: Scheduler
    metrics: Metrics = field(default_factory=Metrics)
    recent: RecentRequests = field(default_factory=RecentRequests)
    started: float = field(default_factory=service_started)
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
