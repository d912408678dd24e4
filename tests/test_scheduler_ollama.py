"""The scheduler's adapters: hailo-ollama's HTTP API (against the fake server, for both releases' ways
of answering) and the drain rate."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hailo_double import subprocess_env
from ollama_testkit import MODEL, RunningOllama, endless_llm_hef

from scheduler.drain import DrainRate
from scheduler.ollama import OllamaClient, OllamaError
from scheduler.turn_types import OllamaView


@pytest.fixture(params=["5.1.1", "5.3.0"])
def ollama(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningOllama]:
    env = subprocess_env(
        {}, HAILO_DOUBLE_STATE_DIR=str(tmp_path / "device"), HAILO_DOUBLE_TOKEN_DELAY_S="0.02"
    )
    running = RunningOllama(tmp_path, {MODEL: endless_llm_hef(tmp_path / "hef")}, env, release=request.param)
    yield running
    running.stop()


def test_ps_sees_nothing_then_the_loaded_model_then_busy_while_it_generates(ollama: RunningOllama) -> None:
    client = OllamaClient(ollama.url, ps_timeout_s=0.3, unload_timeout_s=30)

    async def scenario() -> list[OllamaView]:
        seen = [await client.ps()]
        await asyncio.to_thread(ollama.load)
        seen.append(await client.ps())
        chat = asyncio.create_task(asyncio.to_thread(ollama.chat, 100))  # 100 tokens, 0.02 s each
        while not ollama.events("generation_started"):
            await asyncio.sleep(0.01)
        seen.append(await client.ps())
        await chat
        seen.append(await client.ps())
        await client.close()
        return seen

    idle, loaded, generating, after = asyncio.run(scenario())
    assert idle == OllamaView(reachable=True)
    assert loaded == OllamaView(reachable=True, models=(MODEL,))
    assert generating == OllamaView(reachable=True, busy=True)  # /api/ps waits behind the answer
    assert after == loaded


def test_unload_waits_for_the_running_answer_and_reports_refusals(ollama: RunningOllama) -> None:
    client = OllamaClient(ollama.url, ps_timeout_s=0.3, unload_timeout_s=30)

    async def scenario() -> tuple[bool, bool, str]:
        await asyncio.to_thread(ollama.load)
        chat = asyncio.create_task(asyncio.to_thread(ollama.chat, 50))
        while not ollama.events("generation_started"):
            await asyncio.sleep(0.01)
        unloaded = await client.unload(MODEL)
        lines = await chat
        unknown = await client.unload("no-such-model")
        await client.close()
        return unloaded.ok, lines[-1]["done_reason"] == "length", unknown.detail

    ok, answered_in_full, refusal = asyncio.run(scenario())
    assert ok and answered_in_full
    (ended,) = ollama.events("generation_ended")
    (unloaded,) = ollama.events("unloaded")
    assert ended["at"] < unloaded["at"]
    assert "no-such-model" in refusal and "not found" in refusal  # HTTP 200 + error on 5.1.1, 404 after


def test_an_absent_hailo_ollama_is_unreachable_not_an_error() -> None:
    async def scenario() -> OllamaView:
        client = OllamaClient("http://127.0.0.1:9", ps_timeout_s=0.3, unload_timeout_s=1)
        view = await client.ps()
        result = await client.unload(MODEL)
        await client.close()
        assert not result.ok
        return view

    assert asyncio.run(scenario()) == OllamaView(reachable=False)


async def _streamed(client: OllamaClient, body: dict[str, Any], timeout_s: float = 30) -> list[Any]:
    async with client.stream("/api/chat", body, timeout_s) as lines:
        return [line async for line in lines]


def test_the_catalog_and_a_streamed_chat_and_its_errors_as_each_release_sends_them(
    ollama: RunningOllama,
) -> None:
    client = OllamaClient(ollama.url, ps_timeout_s=0.3, unload_timeout_s=30)
    asked = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 4}}

    async def scenario() -> tuple[bool, list[dict[str, Any]], OllamaError]:
        read = await client.read_catalog(0.0)
        lines = await _streamed(client, asked)
        with pytest.raises(OllamaError) as unknown:
            await _streamed(client, {**asked, "model": "no-such-model"})
        await client.close()
        return read, lines, unknown.value

    read, lines, unknown = asyncio.run(scenario())
    assert read and client.models == (MODEL,)
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["done_reason"] == "length" and len(lines) > 1
    assert unknown.status == 404 and "no-such-model" in unknown.message  # 5.1.1: under HTTP 200


def test_the_catalog_is_read_again_as_soon_as_hailo_ollama_is_back(ollama: RunningOllama) -> None:
    """Gone, it serves nothing; back, its models are listed at once, not after the 30 s schedule."""
    client = OllamaClient(ollama.url, ps_timeout_s=0.3, unload_timeout_s=30)

    async def scenario() -> list[tuple[str, ...]]:
        seen = []
        assert client.catalog_due(0.0) and await client.read_catalog(0.0)
        assert not client.catalog_due(10.0)  # read 10 s ago: not yet
        seen.append(client.models)
        ollama.mode_path.write_text("garbage")  # answers HTML: not hailo-ollama any more
        await client.ps()
        seen.append(client.models)
        ollama.mode_path.write_text("")
        assert (await client.ps()).reachable and client.catalog_due(10.0)
        await client.read_catalog(10.0)
        seen.append(client.models)
        await client.close()
        return seen

    assert asyncio.run(scenario()) == [(MODEL,), (), (MODEL,)]


def test_a_silent_or_absent_hailo_ollama_is_an_error_within_the_timeout_never_a_hang() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]

        async def scenario() -> tuple[OllamaError, OllamaError, bool]:
            client = OllamaClient(f"http://127.0.0.1:{port}", ps_timeout_s=0.3, unload_timeout_s=1)
            with pytest.raises(OllamaError) as slow:
                await _streamed(client, {"model": MODEL, "messages": []}, timeout_s=0.5)
            absent = OllamaClient("http://127.0.0.1:9", ps_timeout_s=0.3, unload_timeout_s=1)
            with pytest.raises(OllamaError) as gone:
                await _streamed(absent, {"model": MODEL, "messages": []})
            read = await absent.read_catalog(0.0)
            await client.close()
            await absent.close()
            return slow.value, gone.value, read

        slow, gone, read = asyncio.run(scenario())
    assert slow.status == 504 and "did not answer within 0.5 s" in slow.message
    assert gone.status == 502 and "not reachable" in gone.message
    assert not read


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_comes_from_the_measured_drain_rate() -> None:
    clock = Clock()
    drain = DrainRate(window_s=60, clock=clock)
    assert drain.retry_after_s(ahead=3, fallback_s=2.0) == 6  # nothing measured yet
    for _ in range(5):  # five answers in 0.2 s: the queue drains fast
        clock.now += 0.05
        drain.finished()
    assert drain.retry_after_s(ahead=1, fallback_s=2.0) == 1
    clock.now += 30  # then nothing for half a minute: the rate decays with it
    assert drain.retry_after_s(ahead=1, fallback_s=2.0) == 8
    clock.now += 120  # the measurements leave the window
    assert drain.per_second() is None
