"""The compute loop in-process: taking and giving back the device, and the work around it, step by step.

A scripted backend and an injected clock: each `step()` is one decision carried out, so the tests
see exactly when the engine loads, retries, releases and serves, without threads or sleeps.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_testkit import Clock, ScriptedBackend, make_engine

from npu_worker.backend import Message, Placement, ReleaseScope, SamplingParams, TextPart
from npu_worker.clip_work import EmbedJob
from npu_worker.generation import GenerateJob
from npu_worker.protocol import Embeddings, Error, Final, Limits, Token
from npu_worker.states import WorkerState
from npu_worker.step_watch import Step


def generation(rid: str, timeout_s: float = 60.0) -> GenerateJob:
    messages = [Message("user", (TextPart("hi"),))]
    return GenerateJob(rid, "vlm", messages, SamplingParams(max_tokens=3), timeout_s)


def clip_job(rid: str) -> EmbedJob:
    return EmbedJob(rid, "clip", [np.zeros((4, 4, 3), np.uint8)], ["a cat"], ())


def test_prepared_the_worker_waits_released_until_told_to_load() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock)
    engine, _ = make_engine(backend, clock)
    assert engine.state == WorkerState.RELEASED
    step, wait_s = engine.step()
    assert step == Step.WAIT and wait_s == float("inf")
    engine.request_load("a vision request is queued")
    assert engine.step() == (Step.LOAD, 0.0)
    assert engine.state == WorkerState.READY and backend.calls == ["prepare", "load"]


def test_a_busy_device_is_retried_with_doubling_backoff_up_to_the_maximum() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, busy_loads=4)
    engine, _ = make_engine(backend, clock)
    engine.request_load("vision work")
    waits = []
    for _ in range(4):
        assert engine.step()[0] == Step.LOAD
        assert engine.state == WorkerState.NPU_BUSY and "hailo-ollama" in engine.detail
        step, wait_s = engine.step()
        assert step == Step.WAIT
        waits.append(wait_s)
        assert engine.device.retry_in_s() == wait_s
        clock.advance(wait_s)
    assert waits == [1.0, 2.0, 4.0, 4.0]  # load_retry_initial_s 1, doubling, capped at load_retry_max_s 4
    assert engine.step()[0] == Step.LOAD
    assert engine.state == WorkerState.READY


def test_a_release_waits_for_the_running_and_queued_generations() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=2)
    engine, sent = make_engine(backend, clock)
    engine.request_load("vision")
    engine.step()
    engine.submit(generation("g1"))
    engine.submit(generation("g2"))
    engine.request_release(ReleaseScope.DEVICE, "idle")
    steps = []
    while (step := engine.step()[0]) != Step.WAIT:
        steps.append(step)
    assert steps == [Step.START, Step.TOKEN, Step.TOKEN, Step.START, Step.TOKEN, Step.TOKEN, Step.RELEASE]
    assert [m.rid for m in sent if isinstance(m, Final)] == ["g1", "g2"]
    assert engine.state == WorkerState.RELEASED and backend.calls[-1] == "release:device"


def test_a_load_asked_again_before_the_release_happened_keeps_the_models() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=2)
    engine, _ = make_engine(backend, clock)
    engine.request_load("vision")
    engine.step()
    engine.submit(generation("g1"))
    engine.request_release(ReleaseScope.DEVICE, "idle")
    engine.step()  # the generation starts; the release must wait for it
    engine.request_load("new vision work")
    while engine.step()[0] != Step.WAIT:
        pass
    assert engine.state == WorkerState.READY
    assert not any(call.startswith("release") for call in backend.calls)


def test_a_release_while_the_device_is_busy_stops_the_retries() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, busy_loads=10)
    engine, _ = make_engine(backend, clock)
    engine.request_load("vision")
    engine.step()
    assert engine.state == WorkerState.NPU_BUSY
    engine.request_release(ReleaseScope.DEVICE, "nobody waits any more")
    assert engine.step()[0] == Step.RELEASE
    assert engine.state == WorkerState.RELEASED
    clock.advance(100)
    assert engine.step() == (Step.WAIT, float("inf"))


def test_clip_runs_on_the_cpu_while_released_and_on_the_npu_once_loaded() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock)
    engine, sent = make_engine(backend, clock, max_batch=1)
    assert engine.clip_placement == Placement.CPU
    job = clip_job("c1")
    assert engine.refusal(job) is None
    engine.submit(job)
    while engine.step()[0] != Step.WAIT:
        pass
    engine.request_load("vision")
    engine.step()
    assert engine.clip_placement == Placement.NPU
    engine.submit(clip_job("c2"))
    while engine.step()[0] != Step.WAIT:
        pass
    assert [m.rid for m in sent if isinstance(m, Embeddings)] == ["c1", "c2"]
    assert [c for c in backend.calls if c.startswith("images")] == ["images:cpu:1", "images:npu:1"]


def test_work_the_device_cannot_take_now_is_refused_with_the_state_it_is_in() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, busy_loads=1, cpu_clip=False)
    engine, _ = make_engine(backend, clock)
    code, _ = engine.refusal(generation("g")) or ("", "")
    assert code == "npu_released"
    assert (engine.refusal(clip_job("c")) or ("",))[0] == "npu_released"
    engine.request_load("vision")
    engine.step()
    assert (engine.refusal(generation("g")) or ("",))[0] == "npu_busy"


def test_a_generation_sent_while_a_requested_load_runs_waits_for_it() -> None:
    """The scheduler can dispatch on a READY heartbeat sent just before the release it then called off
    happened: the worker, told to load, queues the generation until the load ends."""
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=2)
    engine, sent = make_engine(backend, clock)
    engine.request_load("vision")
    assert engine.refusal(generation("g")) is None  # told to load, not loaded yet
    engine.submit(generation("g"))
    while engine.step()[0] != Step.WAIT:
        pass
    assert [m.rid for m in sent if isinstance(m, Final)] == ["g"]
    engine.request_release(ReleaseScope.DEVICE, "idle")
    engine.step()
    engine.request_load("vision again")
    engine.submit(generation("h"))
    engine.request_release(ReleaseScope.DEVICE, "nobody waits any more")  # the load is called off
    assert [(m.rid, m.code) for m in sent if isinstance(m, Error)] == [("h", "npu_released")]


def test_a_generation_past_its_deadline_is_answered_with_a_timeout() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=50)
    engine, sent = make_engine(backend, clock)
    engine.request_load("vision")
    engine.step()
    engine.submit(generation("slow", timeout_s=1.0))  # 50 tokens of 0.1 s each
    while engine.step()[0] != Step.WAIT:
        pass
    errors = [m for m in sent if isinstance(m, Error)]
    assert [(e.rid, e.code) for e in errors] == [("slow", "timeout")]
    assert len([m for m in sent if isinstance(m, Token)]) == 10


def test_an_aborted_generation_stops_at_the_next_token() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=50)
    engine, sent = make_engine(backend, clock)
    engine.request_load("vision")
    engine.step()
    engine.submit(generation("g"))
    engine.step()
    engine.step()
    engine.abort("g")
    while engine.step()[0] != Step.WAIT:
        pass
    assert len([m for m in sent if isinstance(m, Token)]) == 2
    assert not [m for m in sent if isinstance(m, Final)]
    assert engine.figures.requests_cancelled == 1


def test_the_ladders_limits_pause_between_generations_and_shrink_clip_batches() -> None:
    clock = Clock()
    backend = ScriptedBackend(clock, tokens=1)
    engine, sent = make_engine(backend, clock, max_batch=4)
    engine.request_load("vision")
    engine.step()
    engine.apply_limits(Limits(max_batch=2, generation_pause_s=0.5, cache_share=0.25))
    engine.submit(generation("g1"))
    engine.submit(generation("g2"))
    assert engine.step()[0] == Step.SHRINK_CACHES  # on the compute thread, the caches' only user
    assert backend.calls[-1] == "kept_contexts:0.25"
    assert [engine.step()[0] for _ in range(2)] == [Step.START, Step.TOKEN]  # g1 runs and ends
    step, wait_s = engine.step()
    assert step == Step.WAIT and wait_s == pytest.approx(0.5)  # g2 waits out the pause
    clock.advance(0.5)
    assert engine.step()[0] == Step.START
    for rid in ("c1", "c2", "c3"):
        engine.submit(clip_job(rid))
    while engine.step()[0] != Step.WAIT:
        pass
    clock.advance(0.01)  # the third image waited clip.batch_wait_ms for company, then runs alone
    while engine.step()[0] != Step.WAIT:
        pass
    assert [c for c in backend.calls if c.startswith("images")] == ["images:npu:2", "images:npu:1"]
    assert engine.cache.max_bytes == int(engine.text_cache_bytes * 0.25)
    assert {m.rid for m in sent if isinstance(m, Final)} == {"g1", "g2"}
