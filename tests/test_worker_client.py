"""The API's worker client and the scheduler in-process, against a scripted worker on real ZeroMQ sockets.

The scripted worker is a DEALER in the test's own event loop: it sends heartbeats, obeys Load and
Release, and answers Generate. No processes, no model: what is tested is the client's side - the
turn gate, admission, error frames, and what the scheduler tells the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from api.errors import APIError
from api.worker_client import WorkerClient
from npu_worker import codec, protocol
from npu_worker.backend import Finish, Message, Placement, SamplingParams, TextPart
from npu_worker.config import Config, ModelConfig, SchedulerConfig
from npu_worker.protocol import Abort, Error, Final, Generate, Heartbeat, Load, Release, Token, Wire
from npu_worker.states import WorkerState
from scheduler.driver import Scheduler

WAIT_S = 10.0


class ScriptedWorker:
    """Heartbeats every 50 ms; READY after a Load, RELEASED after a Release; answers each Generate
    with two tokens, or with an Error when `refuse` is set."""

    def __init__(self, runtime_dir: Path, backend: str = "hailo") -> None:
        self.context = zmq.asyncio.Context()
        self.api = self.context.socket(zmq.DEALER)
        self.api.setsockopt(zmq.IDENTITY, b"epoch1")  # the API addresses a worker by its epoch
        self.api.connect(protocol.worker_endpoint(runtime_dir))
        self.results = self.context.socket(zmq.PUSH)
        self.results.connect(protocol.results_endpoint(runtime_dir))
        self.backend = backend
        self.state = WorkerState.RELEASED
        self.received: list[Wire] = []
        self.refuse: str | None = None
        self.silent = False  # take Generate and never answer (a lost frame, a stuck worker)

    async def run(self) -> None:
        beat = asyncio.create_task(self._beat())
        try:
            while True:
                message = codec.decode(await self.api.recv_multipart()).message
                self.received.append(message)
                if isinstance(message, Load):
                    self.state = WorkerState.READY
                elif isinstance(message, Release):
                    self.state = WorkerState.RELEASED
                elif isinstance(message, Generate):
                    await self._answer(message)
        finally:
            beat.cancel()

    async def _answer(self, message: Generate) -> None:
        if self.silent:
            return
        if self.refuse is not None:
            await self._send(self.results, Error(message.rid, self.refuse, "refused by the script"))
            return
        for index, text in enumerate(("a ", "circle")):
            await self._send(self.results, Token(message.rid, text, index))
        finish = Finish("stop", 7, 2)
        final = Final(message.rid, "", finish.reason, finish.prompt_tokens, finish.completion_tokens, 0, 0, 0)
        await self._send(self.results, final)

    async def _beat(self) -> None:
        while True:
            beat = Heartbeat(
                self.state, str(self.state), self.backend, (), 0, 0, 1, 0.0, {}, Placement.CPU, None, None
            )
            await self._send(self.api, beat)
            await asyncio.sleep(0.05)

    async def _send(self, socket: zmq.asyncio.Socket, message: Wire) -> None:
        await socket.send_multipart(codec.encode(message, "epoch1"))

    def close(self) -> None:
        self.context.destroy(linger=0)

    def commands(self) -> list[str]:
        return [type(m).__name__ for m in self.received if isinstance(m, Load | Release)]


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, scheduler: SchedulerConfig, max_queue: int = 4, persistent: bool = True
) -> AsyncIterator[tuple[WorkerClient, Scheduler, ScriptedWorker]]:
    config = Config(backend="hailo", model=ModelConfig(persistent=persistent), scheduler=scheduler)
    client = WorkerClient(tmp_path, 0.05, 2.0, max_queue, reply_margin_s=0.2)
    await client.start()
    sched = Scheduler(config, client, None)
    client.scheduler = sched
    await sched.start()
    worker = ScriptedWorker(tmp_path)
    task = asyncio.create_task(worker.run())
    try:
        yield client, sched, worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sched.close()
        await client.close()
        worker.close()


TIMEOUT_S = 0.3  # inference.timeout_s


def generate(rid: str) -> Generate:
    messages = (Message("user", (TextPart("hi"),)),)
    return Generate(rid, "vlm", messages, SamplingParams(), TIMEOUT_S, True)


async def collect(client: WorkerClient) -> list[Any]:
    return [item async for item in client.generate(generate, TIMEOUT_S)]


async def until(condition: Any) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_persistent_model_is_loaded_at_start_and_requests_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, SchedulerConfig(ollama_url="")) as (client, sched, worker):
            await until(lambda: client.ready)
            items = await collect(client)
            assert [type(i).__name__ for i in items] == ["Token", "Token", "Final"]
            assert worker.commands() == ["Load"]
            assert sched.snapshot().owner == "hailo-vision"

    asyncio.run(scenario())


def test_a_lazy_model_is_loaded_by_the_request_waiting_for_it_and_released_when_idle(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = SchedulerConfig(ollama_url="", vlm_idle_release_s=0.1, min_residency_s=0)
        async with running(tmp_path, settings, persistent=False) as (client, _, worker):
            await until(lambda: client.ready)  # ready while released: it loads on demand
            assert worker.commands() == []
            items = await collect(client)  # waits for the Load it causes
            assert isinstance(items[-1], Final)
            await until(lambda: worker.state == WorkerState.RELEASED)
            assert worker.commands() == ["Load", "Release"]

    asyncio.run(scenario())


def test_a_turn_that_does_not_come_is_503_npu_busy_with_retry_after(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = SchedulerConfig(ollama_url="", turn_timeout_s=0.2)
        async with running(tmp_path, settings) as (client, sched, worker):
            await until(lambda: client.view.epoch is not None)
            sched.admin_release()  # keeps vision off the device for min_residency_s (30 s)
            await until(lambda: worker.state == WorkerState.RELEASED and sched.policy.phase == "released")
            with pytest.raises(APIError) as refused:
                await collect(client)
            assert (refused.value.status, refused.value.code) == (503, "npu_busy")
            assert refused.value.retry_after_s is not None and refused.value.retry_after_s >= 1

    asyncio.run(scenario())


def test_an_error_frame_becomes_its_api_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, SchedulerConfig(ollama_url="")) as (client, _, worker):
            await until(lambda: client.ready)
            worker.refuse = "context_length_exceeded"
            with pytest.raises(APIError) as error:
                await collect(client)
            assert (error.value.status, error.value.code) == (400, "context_length_exceeded")
            assert client.outstanding == 0

    asyncio.run(scenario())


def test_a_full_queue_is_refused_at_once_with_retry_after(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = SchedulerConfig(ollama_url="", turn_timeout_s=30)
        async with running(tmp_path, settings, max_queue=1) as (client, sched, _):
            await until(lambda: client.view.epoch is not None)
            sched.admin_release()
            waiting = [asyncio.create_task(collect(client)) for _ in range(2)]
            await until(lambda: client.outstanding == 2)
            with pytest.raises(APIError) as full:
                await collect(client)
            assert (full.value.status, full.value.code) == (503, "queue_full")
            assert full.value.retry_after_s is not None
            sched.admin_load()
            results = await asyncio.gather(*waiting)
            assert all(isinstance(r[-1], Final) for r in results)

    asyncio.run(scenario())


def test_a_worker_that_never_answers_is_504_and_the_request_is_aborted(tmp_path: Path) -> None:
    """The first frame is awaited no longer than the worker's own bound and a margin."""

    async def scenario() -> None:
        async with running(tmp_path, SchedulerConfig(ollama_url="")) as (client, _, worker):
            await until(lambda: client.ready)
            worker.silent = True
            with pytest.raises(APIError) as late:
                await collect(client)
            assert (late.value.status, late.value.code) == (504, "timeout")
            await until(lambda: any(isinstance(m, Abort) for m in worker.received))
            assert client.outstanding == 0

    asyncio.run(scenario())
