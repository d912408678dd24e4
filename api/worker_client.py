"""The API's side of the worker protocol: per-request streams over one ROUTER socket, and death detection.

The API binds the ROUTER; whichever worker is alive connects and announces itself with heartbeats.
Results (tokens, answers, embeddings) arrive on a PULL socket the worker's compute thread pushes to.
A request is sent to the current worker's identity (its epoch) and gets its own asyncio queue of
frames. When the worker dies - its socket disconnects (process exit) or its heartbeats stop - every
request it held ends at once with 503 `worker_unavailable`, and new ones get 503 until a new worker
reports ready. Frames from any other epoch are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from api.errors import APIError
from api.worker_view import WorkerView
from npu_worker import codec, protocol
from npu_worker.backend import ReleaseScope
from npu_worker.logs import log_event
from npu_worker.protocol import (
    ERROR_STATUS,
    Abort,
    Embed,
    Embeddings,
    Error,
    Final,
    Generate,
    Heartbeat,
    Limits,
    Load,
    Ping,
    Pong,
    Release,
    Stats,
    StatsRequest,
    Token,
    Wire,
)
from npu_worker.states import WorkerState
from scheduler.drain import DrainRate
from scheduler.driver import Scheduler, TurnRefused, Work

log = logging.getLogger("api.worker")
# How long past the worker's own bound (inference.timeout_s) the API waits for a request's next frame:
# the worker answers 504 itself at its bound; silence beyond this means a lost frame or a stuck worker.
REPLY_MARGIN_S = 5.0


Result = Token | Final | Embeddings  # what a request's stream yields; an Error frame raises instead


@dataclass
class _Stream:
    epoch: str
    queue: asyncio.Queue[Result | Error | APIError] = field(default_factory=asyncio.Queue)


async def _next_within(
    queue: asyncio.Queue[Result | Error | APIError], deadline: float, within_s: float
) -> Result | Error | APIError:
    """The next frame, or 504 past `deadline` (a frame already there costs no timer: tokens stream)."""
    if not queue.empty():
        return queue.get_nowait()
    try:
        async with asyncio.timeout_at(deadline):
            return await queue.get()
    except TimeoutError:
        raise APIError(504, f"the NPU worker did not answer within {within_s:g} s", "timeout") from None


@contextlib.asynccontextmanager
async def granted(turn: contextlib.AbstractAsyncContextManager[None]) -> AsyncIterator[None]:
    """Inside the scheduler's `turn`, or 503 with its code and Retry-After when the turn is refused."""
    try:
        async with turn:
            yield
    except TurnRefused as refused:
        raise APIError(503, refused.message, refused.code, None, refused.retry_after_s) from None


def error_from_frame(error: Error) -> APIError:
    status = ERROR_STATUS.get(error.code, 500)
    retry = 2.0 if status == 503 else None
    return APIError(status, error.message, error.code, error.param, retry)


class WorkerClient:
    def __init__(
        self,
        runtime_dir: Path,
        heartbeat_interval_s: float,
        heartbeat_timeout_s: float,
        max_queue: int,
        reply_margin_s: float = REPLY_MARGIN_S,
    ) -> None:
        self.runtime_dir = runtime_dir
        self.reply_margin_s = reply_margin_s
        self.endpoint = protocol.worker_endpoint(runtime_dir)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.max_queue = max_queue
        self.view = WorkerView()
        self.restarts = 0  # worker epochs seen after the first
        self.outstanding = 0  # requests sent and not finished (queued + running)
        self._epochs_seen = 0
        self._streams: dict[str, _Stream] = {}
        self._stats_waiters: dict[int, asyncio.Future[Stats]] = {}
        self._seq = itertools.count(1)
        self.drain = DrainRate()
        self.scheduler: Scheduler | None = None  # set by the app; gates work that needs the device
        self._tasks: list[asyncio.Task[None]] = []
        self._context = zmq.asyncio.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._results = self._context.socket(zmq.PULL)
        self._results.setsockopt(zmq.LINGER, 0)

    async def start(self) -> None:
        monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._socket.bind(self.endpoint)
        self._results.bind(protocol.results_endpoint(self.runtime_dir))
        self._tasks = [
            asyncio.create_task(self._receive(), name="worker-receive"),
            asyncio.create_task(self._receive_results(), name="worker-results"),
            asyncio.create_task(self._watch_disconnects(monitor), name="worker-monitor"),
            asyncio.create_task(self._watch_heartbeats(), name="worker-heartbeat"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._socket.close(linger=0)
        self._results.close(linger=0)
        self._context.term()

    # --- state ---------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """What /health/ready answers: a worker is there and the scheduler says it can serve."""
        if self.view.epoch is None:
            return False
        if self.scheduler is None:
            return self.view.state == WorkerState.READY
        return self.scheduler.can_serve()

    def retry_after_s(self) -> float:
        """When a full queue will have room again, from the measured drain rate."""
        return self.drain.retry_after_s(self.outstanding - self.max_queue + 1, fallback_s=2.0)

    async def send_load(self, reason: str) -> None:
        await self._tell(Load(reason))

    async def send_release(self, scope: ReleaseScope, reason: str) -> None:
        await self._tell(Release(scope, reason))

    async def send_limits(self, limits: Limits) -> None:
        await self._tell(limits)

    async def _tell(self, message: Wire) -> None:
        """A command to the current worker, if there is one."""
        if self.view.epoch is not None:
            with contextlib.suppress(APIError):
                await self._send(self.view.epoch, message)

    def _unavailable(self, reason: str) -> APIError:
        retry = max(2.0, self.view.model_load_seconds + 1.0)
        return APIError(503, reason, "worker_unavailable", None, retry)

    def _worker_lost(self, why: str) -> None:
        epoch = self.view.epoch
        if epoch is None:
            return
        log_event(log, "worker_lost", logging.WARNING, epoch=epoch, why=why, failed=len(self._streams))
        self.view = WorkerView(detail=f"NPU worker stopped ({why}); waiting for restart")
        if self.scheduler is not None:
            self.scheduler.worker_changed(None)
        error = self._unavailable("the NPU worker stopped while serving this request; retry shortly")
        for stream in self._streams.values():
            if stream.epoch == epoch:
                stream.queue.put_nowait(error)

    # --- requests ------------------------------------------------------------------------------------

    def admit(self) -> None:
        """Refuse at once what cannot wait: no worker, or a full queue (routes ask before they decode
        images too, so an overloaded service answers its 503s cheaply)."""
        if self.view.epoch is None:
            raise self._unavailable(f"the NPU worker is not available: {self.view.detail}")
        if self.outstanding >= self.max_queue + 1:
            raise APIError(
                503,
                f"the queue is full ({self.max_queue} requests waiting); retry later",
                "queue_full",
                None,
                self.retry_after_s(),
            )

    async def request(
        self, work: Work, make: Callable[[str], Generate | Embed], timeout_s: float
    ) -> AsyncGenerator[Result, None]:
        """Send one request (built by `make` from its request id) once it may run - the scheduler
        holds work that needs the device until hailo-vision's turn - and yield its results until
        Final or Embeddings; an Error frame raises APIError. The worker bounds its work by `timeout_s`;
        a reply missing `reply_margin_s` past that is a 504.

        Leaving the iteration early (client gone) sends Abort so the worker drops or stops the work.
        """
        self.admit()
        self.outstanding += 1
        turn = self.scheduler.turn(work) if self.scheduler is not None else contextlib.nullcontext()
        try:
            async with granted(turn):
                async for item in self._exchange(make, timeout_s + self.reply_margin_s):
                    yield item
        finally:
            self.outstanding -= 1

    async def _exchange(
        self, make: Callable[[str], Generate | Embed], within_s: float
    ) -> AsyncGenerator[Result, None]:
        epoch = self.view.epoch
        if epoch is None:
            raise self._unavailable(f"the NPU worker is not available: {self.view.detail}")
        rid = uuid.uuid4().hex
        stream = _Stream(epoch)
        self._streams[rid] = stream
        finished = False
        try:
            await self._send(epoch, make(rid))
            deadline = asyncio.get_running_loop().time() + within_s
            while True:
                item = await _next_within(stream.queue, deadline, within_s)
                if isinstance(item, APIError):
                    finished = True
                    raise item
                if isinstance(item, Error):
                    finished = True
                    raise error_from_frame(item)
                finished = not isinstance(item, Token)
                yield item
                if finished:
                    self.drain.finished()
                    return
        finally:
            self._streams.pop(rid, None)
            if not finished and self.view.epoch == epoch:
                with contextlib.suppress(zmq.ZMQError):
                    await self._send(epoch, Abort(rid))

    async def take_turn(self) -> None:
        """The VLM on the device now (Ollama's load form): hailo-vision's turn, as a generation waits."""
        self.admit()
        if self.scheduler is None:
            return
        async with granted(self.scheduler.turn(Work.GENERATE)):
            pass

    async def generate(
        self, make: Callable[[str], Generate], timeout_s: float
    ) -> AsyncGenerator[Token | Final, None]:
        """A generation's tokens, then its Final; its length capped where the degradation rung says."""

        def capped(rid: str) -> Generate:
            message = make(rid)
            cap = self.scheduler.max_tokens() if self.scheduler is not None else None
            if cap is None or message.params.max_tokens <= cap:
                return message
            return dataclasses.replace(message, params=dataclasses.replace(message.params, max_tokens=cap))

        async for item in self.request(Work.GENERATE, capped, timeout_s):
            if isinstance(item, Embeddings):
                raise APIError(500, "the worker answered a generation with embeddings", "protocol_error")
            yield item

    async def embed(self, make: Callable[[str], Embed], timeout_s: float) -> Embeddings:
        """CLIP work's embeddings (504 when they do not come in time)."""
        frames = self.request(Work.CLIP, make, timeout_s)
        try:
            answer = await anext(frames)
        finally:
            with contextlib.suppress(APIError):
                await frames.aclose()
        if not isinstance(answer, Embeddings):
            raise APIError(500, f"the worker answered CLIP work with {answer!r}", "protocol_error")
        return answer

    async def stats(self, timeout_s: float = 1.0) -> Stats | None:
        """The worker's counters, or None when it does not answer in time."""
        epoch = self.view.epoch
        if epoch is None:
            return None
        seq = next(self._seq)
        future: asyncio.Future[Stats] = asyncio.get_running_loop().create_future()
        self._stats_waiters[seq] = future
        try:
            await self._send(epoch, StatsRequest(seq))
            return await asyncio.wait_for(future, timeout_s)
        except (TimeoutError, zmq.ZMQError):
            return None
        finally:
            self._stats_waiters.pop(seq, None)

    async def _send(self, epoch: str, message: Wire) -> None:
        frames = codec.encode(message, "api")
        try:
            await self._socket.send_multipart([epoch.encode(), *frames], copy=False)
        except zmq.ZMQError as exc:  # EHOSTUNREACH: that worker is gone
            self._worker_lost(f"send failed: {exc}")
            raise self._unavailable("the NPU worker is not reachable; retry shortly") from exc

    # --- background tasks ----------------------------------------------------------------------------

    async def _receive(self) -> None:
        while True:
            _identity, *frames = await self._socket.recv_multipart(copy=False)
            self._dispatch(frames)

    async def _receive_results(self) -> None:
        while True:
            self._dispatch(await self._results.recv_multipart(copy=False))

    def _dispatch(self, frames: list[zmq.Frame]) -> None:
        try:
            envelope = codec.decode(frames)
        except protocol.ProtocolError as exc:
            log_event(log, "protocol_error", logging.WARNING, error=str(exc))
            return
        message = envelope.message
        if isinstance(message, Heartbeat):
            self._on_heartbeat(envelope.epoch, message)
            return
        if envelope.epoch != self.view.epoch:
            return  # a frame from a dead or not-yet-adopted worker
        match message:
            case Stats(seq=seq):
                waiter = self._stats_waiters.get(seq)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            case Token() | Final() | Embeddings() | Error():
                stream = self._streams.get(message.rid)
                if stream is not None and stream.epoch == envelope.epoch:
                    stream.queue.put_nowait(message)
            case Pong():
                pass
            case _:
                log_event(log, "unexpected_message", logging.WARNING, kind=message.KIND.value)

    def _on_heartbeat(self, epoch: str, beat: Heartbeat) -> None:
        if epoch != self.view.epoch:
            if self.view.epoch is not None:
                self._worker_lost("replaced by a new worker")
            self._epochs_seen += 1
            self.restarts = max(0, self._epochs_seen - 1)
            log_event(log, "worker_adopted", epoch=epoch, pid=beat.pid, state=beat.state)
        self.view = WorkerView(epoch=epoch, detail=beat.detail, beat=beat, last_seen=time.monotonic())
        if self.scheduler is not None:
            self.scheduler.worker_changed(beat)

    async def _watch_disconnects(self, monitor: zmq.asyncio.Socket) -> None:
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    self._worker_lost("its connection closed")
        finally:
            monitor.close(linger=0)

    async def _watch_heartbeats(self) -> None:
        """Declare the worker dead when silent, and ping it so it knows the API is alive."""
        while True:
            await asyncio.sleep(min(self.heartbeat_interval_s, 0.25))
            epoch = self.view.epoch
            if epoch is None:
                continue
            if time.monotonic() - self.view.last_seen > self.heartbeat_timeout_s:
                self._worker_lost(f"no heartbeat for {self.heartbeat_timeout_s:g} s")
                continue
            with contextlib.suppress(APIError, zmq.ZMQError):
                await self._send(epoch, Ping(0))
