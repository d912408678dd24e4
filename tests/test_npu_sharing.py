"""Turns on the NPU with hailo-ollama, through the running service on the HailoRT double.

A fake hailo-ollama (a real server, tests/fake_ollama.py) holds the same simulated device while its
model is loaded, serves one request at a time and unloads on keep_alive 0, as the real one does. The
order of events across the processes is read from its event log and the service's /health, never
from sleeps.
"""

from __future__ import annotations

import time
from typing import Any

from ollama_testkit import MODEL
from service import wait_until


def test_a_vision_request_takes_the_npu_from_an_idle_hailo_ollama(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 0})
    assert pair.ollama.load()["done_reason"] == "load"
    pair.service.wait_ready()  # ready, though hailo-ollama holds the NPU: it serves by taking its turn
    pair.wait_owner("hailo-ollama")
    reply = pair.ask()
    assert reply.status_code == 200, reply.text
    assert pair.owner() == "hailo-vision"
    (unloaded,) = pair.ollama.events("unloaded")
    unload_request = [e for e in pair.ollama.events("request") if e["keep_alive"] == 0]
    assert unload_request and unloaded["at"] >= unload_request[0]["at"]
    assert pair.switches() == 1
    assert "npu_unload_ollama" in pair.service.logs() and "ollama_unloaded" in pair.service.logs()


def test_a_running_hailo_ollama_answer_finishes_in_full_before_vision_is_served(make_pair: Any) -> None:
    pair = make_pair({"policy": "vision-first"})
    pair.ollama.load()
    pair.service.wait_ready()
    thread, lines = pair.ollama.chat_in_background(num_predict=80)  # 80 tokens, 0.02 s each
    wait_until(lambda: pair.ollama.events("generation_started"), timeout_s=30)
    reply = pair.ask()
    answered_at = time.monotonic()
    assert reply.status_code == 200, reply.text
    thread.join(60)
    (chat,) = lines
    assert chat[-1]["done"] is True and chat[-1]["done_reason"] == "length"
    assert chat[-1]["eval_count"] == 81  # every token: nothing was cut off
    (ended,) = pair.ollama.events("generation_ended")
    (unloaded,) = pair.ollama.events("unloaded")
    assert ended["at"] < unloaded["at"] < answered_at


def test_idle_release_gives_the_npu_back_and_the_next_vision_request_reloads(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 0, "vlm_idle_release_s": 0.5})
    pair.service.wait_ready()
    pair.wait_owner("hailo-vision")  # persistent: loaded at start while nobody held the NPU
    pair.wait_owner("nobody")  # idle for vlm_idle_release_s: released, hailo-ollama present
    chat = pair.ollama.chat(num_predict=5)  # hailo-ollama loads its model on the free device
    assert chat[-1]["done"] is True and not pair.ollama.events("load_failed")
    pair.wait_owner("hailo-ollama")
    assert pair.ask().status_code == 200
    assert pair.health()["npu"]["owner"] == "hailo-vision"
    assert pair.switches() >= 3  # loaded, released, taken back
    assert "models_released" in pair.service.logs()


def test_a_burst_of_vision_work_costs_one_switch_not_one_per_request(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 0, "vlm_idle_release_s": 30})
    pair.ollama.load()
    pair.service.wait_ready()
    pair.wait_owner("hailo-ollama")
    replies = [pair.ask() for _ in range(4)]
    assert [r.status_code for r in replies] == [200] * 4
    assert pair.switches() == 1
    assert len(pair.ollama.events("unloaded")) == 1


def test_ollama_first_leaves_hailo_ollama_its_model_until_max_wait(make_pair: Any) -> None:
    pair = make_pair({"policy": "ollama-first", "max_wait_s": 1.0, "turn_timeout_s": 60})
    pair.ollama.load()
    pair.service.wait_ready()
    pair.wait_owner("hailo-ollama")
    reply = pair.ask()
    assert reply.status_code == 200, reply.text
    assert "max_wait_s" in pair.service.logs()  # taken only once the request had waited max_wait_s


def test_ollama_first_refuses_with_retry_after_when_the_turn_does_not_come(make_pair: Any) -> None:
    pair = make_pair({"policy": "ollama-first", "max_wait_s": 600, "turn_timeout_s": 0.5})
    pair.ollama.load()
    pair.service.wait_ready()
    pair.wait_owner("hailo-ollama")
    reply = pair.ask()
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "npu_busy"
    assert int(reply.headers["Retry-After"]) >= 1
    assert pair.owner() == "hailo-ollama" and not pair.ollama.events("unloaded")


def test_exclusive_takes_the_npu_at_start_and_keeps_it(make_pair: Any) -> None:
    pair = make_pair({"policy": "exclusive", "vlm_idle_release_s": 0.2})
    pair.ollama.load()
    pair.service.wait_ready()
    pair.wait_owner("hailo-vision")
    assert pair.ollama.events("unloaded")
    chat = pair.ollama.http.post(
        "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert "error" in chat.json()  # hailo-ollama cannot load while hailo-vision keeps the NPU
    assert pair.ollama.events("load_failed")
    assert pair.owner() == "hailo-vision" and pair.switches() == 1


def test_clip_is_served_on_the_cpu_while_hailo_ollama_holds_the_npu(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 0})
    pair.ollama.load()
    pair.service.wait_ready()
    pair.wait_owner("hailo-ollama")
    reply = pair.classify()
    assert reply.status_code == 200, reply.text
    assert not pair.ollama.events("unloaded")  # CLIP did not take the NPU
    status = pair.service.http.get("/admin/status").json()
    (clip,) = [m for m in status["models"] if m["kind"] == "clip"]
    assert clip["placement"] == "cpu"


def test_clip_stays_on_the_npu_beside_hailo_ollama_in_the_shared_group(make_pair: Any) -> None:
    pair = make_pair(
        {"min_residency_s": 0, "vlm_idle_release_s": 0.3, "ollama_shares_device": True},
        ollama_env={"HAILO_OLLAMA_VDEVICE_GROUP_ID": "SHARED"},
    )
    pair.service.wait_ready()
    pair.wait_owner("hailo-vision")
    pair.wait_owner("nobody")  # the VLM released, CLIP kept on the device
    chat = pair.ollama.chat(num_predict=3)
    assert chat[-1]["done"] is True and not pair.ollama.events("load_failed")
    assert pair.classify().status_code == 200
    status = pair.service.http.get("/admin/status").json()
    (clip,) = [m for m in status["models"] if m["kind"] == "clip"]
    assert clip["placement"] == "npu" and status["npu"]["owner"] == "hailo-ollama"


def test_admin_release_and_load(make_pair: Any) -> None:
    pair = make_pair({"min_residency_s": 30})
    pair.service.wait_ready()
    pair.wait_owner("hailo-vision")
    released = pair.service.http.post("/admin/npu/release")
    assert released.status_code == 200
    pair.wait_owner("nobody")
    pair.ollama.load()  # a script's hailo-ollama job gets the device
    pair.wait_owner("hailo-ollama")
    loaded = pair.service.http.post("/admin/npu/load")
    assert loaded.status_code == 200
    pair.wait_owner("hailo-vision")
    assert pair.ollama.events("unloaded")
    assert pair.ask().status_code == 200
