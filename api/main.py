"""The API front-end process: uvicorn serving the Starlette app, one process, asyncio.

On SIGTERM/SIGINT uvicorn stops accepting connections and lets in-flight requests (streams included)
finish for up to `api.drain_timeout_s`. The process reports its state to the supervisor's control
socket: starting, listening (uvicorn is bound), draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
import zmq
import zmq.asyncio

from api.app import create_app
from api.http_guard import guarded_protocol
from api.services import Services
from api.worker_client import WorkerClient
from npu_worker import codec, protocol
from npu_worker.child import child_setup
from npu_worker.config import Config, ConfigError
from npu_worker.logs import log_event
from npu_worker.protocol import Status
from npu_worker.states import ApiState, Role
from scheduler.driver import Scheduler
from scheduler.ollama import OllamaClient

log = logging.getLogger("api")


class _Server(uvicorn.Server):
    """uvicorn's server, noting when a drain starts so the supervisor and /health can say so."""

    services: Services | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.services is not None and self.services.state != ApiState.DRAINING:
            self.services.state = ApiState.DRAINING
            log_event(log, "draining", in_flight=self.services.in_flight)
        super().handle_exit(sig, frame)


async def _report_status(services: Services, server: _Server, runtime_dir: Path, interval_s: float) -> None:
    context = zmq.asyncio.Context.instance()
    control = context.socket(zmq.DEALER)
    control.setsockopt(zmq.LINGER, 0)
    control.setsockopt(zmq.SNDHWM, 10)
    control.connect(protocol.control_endpoint(runtime_dir))
    epoch = protocol.new_epoch()
    parent = os.getppid()
    sent: tuple[Any, ...] | None = None
    sent_at = 0.0
    try:
        while True:
            if os.getppid() != parent and not server.force_exit:
                # No drain: the worker leaves too, and the port must be free for a new service.
                log_event(log, "supervisor_gone", logging.WARNING)
                server.should_exit = server.force_exit = True
            if services.state == ApiState.STARTING and server.started:
                services.state = ApiState.LISTENING
                log_event(log, "listening", host=services.config.api.host, port=services.config.api.port)
            view = services.worker.view
            snapshot = services.scheduler.snapshot()
            status = Status(
                role=Role.API,
                pid=os.getpid(),
                state=services.state,
                detail=view.detail,
                in_flight=services.in_flight,
                queued=view.queued,
                model=services.config.model.name,
                worker_ready=services.worker.ready,  # what /health/ready answers
                npu_owner=snapshot.owner,
                npu_reason=snapshot.owner_reason,
                rung=snapshot.ladder.rung,
                rung_reason="; ".join(snapshot.ladder.reasons),
            )
            now = time.monotonic()
            # On every change at once (READY=1 waits for worker_ready), else once per interval.
            changes = (services.state, status.worker_ready, status.npu_owner, status.rung)
            if changes != sent or now - sent_at >= interval_s:
                with contextlib.suppress(zmq.Again):
                    await control.send_multipart(codec.encode(status, epoch), zmq.NOBLOCK)
                sent, sent_at = changes, now
            settled = services.state != ApiState.STARTING and services.worker.ready
            await asyncio.sleep(interval_s if settled else 0.05)
    finally:
        control.close(linger=0)


def _raise_open_files_limit() -> None:
    """Up to the hard limit: api.max_connections sockets must never run the process out of files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(config: Config, runtime_dir: Path) -> None:
    worker = WorkerClient(
        runtime_dir,
        config.worker.heartbeat_interval_s,
        config.worker.heartbeat_timeout_s,
        config.resources.max_queue,
    )
    await worker.start()
    s = config.scheduler
    ollama = (
        OllamaClient(s.ollama_url, s.ollama_timeout_s, s.ollama_unload_timeout_s) if s.ollama_url else None
    )
    scheduler = Scheduler(config, worker, ollama)
    worker.scheduler = scheduler
    await scheduler.start()
    app = create_app(config, worker, scheduler)
    api = config.api
    _raise_open_files_limit()
    server = _Server(
        uvicorn.Config(
            app,
            host=api.host,
            port=api.port,
            http=guarded_protocol(api, app.state.services.metrics),
            timeout_keep_alive=api.keep_alive_s,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(max(1, api.drain_timeout_s)),
            lifespan="off",
        )
    )
    server.services = app.state.services
    reporter = asyncio.create_task(
        _report_status(app.state.services, server, runtime_dir, config.worker.heartbeat_interval_s)
    )
    try:
        await server.serve()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await scheduler.close()
        await worker.close()
    log_event(log, "api_stopped")


def main(argv: list[str] | None = None) -> int:
    config, runtime_dir = child_setup("api", __doc__, argv)
    try:
        asyncio.run(serve(config, runtime_dir))
    except ConfigError as exc:
        log_event(log, "config_error", logging.ERROR, error=str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
