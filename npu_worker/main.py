"""The NPU worker process: owns the backend and serves the API over ZeroMQ.

Two threads. The engine thread computes (ONNX Runtime and HailoRT release the GIL) and pushes what it
computes - tokens, answers, embeddings - straight to the API on its own socket. This, the socket
thread, owns the others: it takes requests and aborts from the API and sends heartbeats to the API
and status to the supervisor, so a long prefill never looks like death.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from npu_worker import codec, protocol
from npu_worker.backends import create_backend
from npu_worker.child import child_setup
from npu_worker.clip_work import EmbedJob
from npu_worker.config import Config
from npu_worker.engine import Engine
from npu_worker.generation import GenerateJob
from npu_worker.logs import log_event
from npu_worker.protocol import (
    Abort,
    Embed,
    Error,
    Generate,
    Heartbeat,
    Limits,
    Load,
    Ping,
    Pong,
    ProtocolError,
    Release,
    Stats,
    StatsRequest,
    Status,
    Wire,
)
from npu_worker.states import Role, WorkerState

log = logging.getLogger("npu_worker")
EXIT_FATAL = 3
# Results queued for the API before new ones are dropped: at 2,000 tokens/s (the demo model) that is
# 50 s of tokens, far past worker.heartbeat_timeout_s, after which a silent API's requests are aborted.
RESULTS_HWM = 100_000
FLUSH_S = 0.1
STOP_JOIN_S = 10.0  # a stop waits this long for the compute thread to finish its step
ORPHAN_JOIN_S = 1.0  # without a supervisor: the service's children must be gone within 2 s


class WorkerProcess:
    def __init__(self, config: Config, runtime_dir: Path) -> None:
        self.config = config
        self.epoch = protocol.new_epoch()
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.api = self.context.socket(zmq.DEALER)
        self.api.setsockopt(zmq.IDENTITY, self.epoch.encode())
        self.api.setsockopt(zmq.LINGER, 0)
        self.api.connect(protocol.worker_endpoint(runtime_dir))
        self.control = self.context.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.setsockopt(zmq.SNDHWM, 10)
        self.control.connect(protocol.control_endpoint(runtime_dir))
        self.results_endpoint = protocol.results_endpoint(runtime_dir)
        self._emit_local = threading.local()
        self.results_dropped = 0
        self.engine = Engine(create_backend(config), self._emit, self._fatal, config)
        self.stopping = threading.Event()
        self.fatal_message: str | None = None
        self.api_seen = time.monotonic()
        self.parent_pid = os.getppid()
        self.orphaned = False  # the supervisor is gone: leave at once, nobody will stop us in order
        self.chip_celsius: float | None = None
        self._thermometer = threading.Thread(target=self._read_chip, name="thermometer", daemon=True)

    def _read_chip(self) -> None:
        """The accelerator's temperature every thermal.poll_s, off the socket and compute threads (a
        device call must never hold up a heartbeat or a token)."""
        while not self.stopping.wait(self.config.thermal.poll_s):
            if self.engine.state != WorkerState.STARTING:
                self.chip_celsius = self.engine.backend.chip_temperature()

    # The engine thread sends through its own PUSH socket (zmq sockets are not thread-safe).
    def _emit(self, message: Wire) -> None:
        push = getattr(self._emit_local, "push", None)
        if push is None:
            push = self.context.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 1000)
            push.setsockopt(zmq.SNDHWM, RESULTS_HWM)
            push.connect(self.results_endpoint)
            self._emit_local.push = push
        try:
            push.send_multipart(codec.encode(message, self.epoch), zmq.NOBLOCK, copy=False)
        except zmq.Again:  # RESULTS_HWM frames unread: the API is gone, and the heartbeat check
            self.results_dropped += 1  # aborts its requests; compute must never block on it
            if self.results_dropped % 1000 == 1:
                log_event(log, "results_dropped", logging.WARNING, dropped=self.results_dropped)

    def _fatal(self, message: str) -> None:
        self.fatal_message = message
        self.stopping.set()

    def _send_api(self, message: Wire) -> None:
        self.api.send_multipart(codec.encode(message, self.epoch), copy=False)

    def _heartbeat(self) -> None:
        engine = self.engine
        in_flight = 1 if engine.active_rid else 0
        self._send_api(
            Heartbeat(
                state=engine.state,
                detail=engine.detail,
                backend=engine.backend.name,
                models=tuple(engine.models),
                queued=engine.queued(),
                in_flight=in_flight,
                pid=os.getpid(),
                model_load_seconds=engine.device.load_seconds,
                details=engine.details,
                clip_placement=engine.clip_placement,
                retry_in_s=engine.device.retry_in_s(),
                chip_temperature_c=self.chip_celsius,
            )
        )
        status = Status(
            role=Role.WORKER,
            pid=os.getpid(),
            state=engine.state,
            detail=engine.detail,
            in_flight=in_flight,
            queued=engine.queued(),
            model=self.config.model.name,
        )
        with contextlib.suppress(zmq.Again):  # status is best effort: never block on the supervisor
            self.control.send_multipart(codec.encode(status, self.epoch), zmq.NOBLOCK)

    def _stats(self, seq: int) -> Stats:
        engine, figures, cache = self.engine, self.engine.figures, self.engine.cache
        return Stats(
            seq=seq,
            model_load_seconds=engine.device.load_seconds,
            tokens_generated=figures.tokens_generated,
            requests_finished=figures.requests_finished,
            requests_failed=figures.requests_failed,
            requests_cancelled=figures.requests_cancelled,
            queued=engine.queued(),
            text_cache_hits=cache.hits,
            text_cache_misses=cache.misses,
            text_cache_entries=len(cache),
            text_cache_bytes=cache.bytes,
            clip_encoder_runs=engine.clip.encoder_runs,
            clip_images_encoded=engine.clip.images_encoded,
        )

    def _check_compute_alive(self) -> None:
        """Heartbeats come from this thread; the compute thread answers for itself through its step's
        age. Stuck past its bound (a device call that never returns), the worker exits and is
        restarted: its requests end at once with 503 instead of waiting forever."""
        stuck = self.engine.watch.stalled()
        if stuck is not None and self.fatal_message is None:
            log_event(log, "compute_stalled", logging.ERROR, detail=stuck)
            self._fatal(f"the compute thread is stuck: {stuck}")

    def _check_api_alive(self) -> None:
        """The API pings while it lives; when it goes silent, its requests are orphans: drop them."""
        if time.monotonic() - self.api_seen > self.config.worker.heartbeat_timeout_s:
            dropped = self.engine.abort_all()
            if dropped:
                log_event(log, "api_lost_requests_aborted", logging.WARNING, aborted=dropped)

    def _handle_api(self, frames: list[Any]) -> None:
        self.api_seen = time.monotonic()
        try:
            message = codec.decode(frames).message
        except ProtocolError as exc:
            log_event(log, "protocol_error", logging.WARNING, error=str(exc))
            return
        match message:
            case Generate() | Embed():
                self._submit(message)
            case Abort(rid=rid):
                self.engine.abort(rid)
            case Ping(seq=seq):
                self._send_api(Pong(seq))
            case StatsRequest(seq=seq):
                self._send_api(self._stats(seq))
            case Load(reason=reason):
                self.engine.request_load(reason)
            case Release(scope=scope, reason=reason):
                self.engine.request_release(scope, reason)
            case Limits():
                self.engine.apply_limits(message)
            case _:
                log_event(log, "unexpected_message", logging.WARNING, kind=message.KIND.value)

    def _submit(self, message: Generate | Embed) -> None:
        """Queue a generation or CLIP work, or answer at once why it cannot be."""
        job = (
            GenerateJob.from_message(message)
            if isinstance(message, Generate)
            else EmbedJob.from_message(message)
        )
        refusal = self.engine.refusal(job)
        if refusal is not None:
            self._send_api(Error(message.rid, *refusal))
            return
        self.engine.submit(job)

    def serve(self) -> int:
        self.engine.start()
        self._thermometer.start()
        poller = zmq.Poller()
        poller.register(self.api, zmq.POLLIN)
        interval = self.config.worker.heartbeat_interval_s
        next_beat = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self._check_compute_alive()
                self._heartbeat()
                self._check_api_alive()
                if os.getppid() != self.parent_pid:
                    log_event(log, "supervisor_gone", logging.WARNING)
                    self.orphaned = True
                    self.stopping.set()
                next_beat = now + interval
            ready = dict(poller.poll(timeout=max(1, int((next_beat - now) * 1000))))
            if self.api in ready:
                while True:
                    try:
                        self._handle_api(self.api.recv_multipart(zmq.NOBLOCK, copy=False))
                    except zmq.Again:
                        break
        if self.fatal_message is not None:
            time.sleep(FLUSH_S)  # let the engine's last frames (the request's error) reach the API first
            self._heartbeat()  # tell the API and supervisor why, before exiting
            log_event(log, "worker_exit_fatal", logging.ERROR, error=self.fatal_message)
            time.sleep(FLUSH_S)  # zmq sends from its own I/O thread, which os._exit would cut short
            return EXIT_FATAL
        self.engine.stop(join_s=ORPHAN_JOIN_S if self.orphaned else STOP_JOIN_S)
        log_event(log, "worker_stopped")
        return 0


def main(argv: list[str] | None = None) -> int:
    config, runtime_dir = child_setup("worker", __doc__, argv)
    worker = WorkerProcess(config, runtime_dir)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stopping.set())
    log_event(log, "worker_started", pid=os.getpid(), epoch=worker.epoch, backend=config.backend)
    code = worker.serve()
    if code == EXIT_FATAL or worker.orphaned:
        os._exit(code)  # the engine thread may be stuck in the device: do not wait for it
    return code


if __name__ == "__main__":
    sys.exit(main())
