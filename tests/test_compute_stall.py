"""A compute thread stuck inside a device call is seen, and its request ends instead of hanging."""

from __future__ import annotations

from pathlib import Path

from engine_testkit import Clock
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import make_clip_hef, make_vlm_hef
from service import Service, image_data_url, wait_until

from npu_worker.step_watch import Step, StepWatch


def test_a_step_past_its_bound_is_reported_with_what_it_was_doing() -> None:
    clock = Clock()
    watch = StepWatch(clock, bound_s=120.0, bounds={Step.LOAD: 300.0})
    assert watch.stalled() is None
    with watch.running(Step.CLIP):
        clock.advance(120)
        assert watch.stalled() is None
        clock.advance(1)
        assert watch.stalled() == "clip has run for 121 s (bound 120 s)"
    assert watch.stalled() is None  # the step ended
    with watch.running(Step.LOAD):
        clock.advance(200)
        assert watch.stalled() is None  # a load may take worker.start_timeout_s


def test_a_hung_device_call_ends_the_request_and_restarts_the_worker(tmp_path: Path) -> None:
    env = subprocess_env(
        {},
        HAILO_DOUBLE_STATE_DIR=str(tmp_path / "device"),
        HAILO_DOUBLE_INFER_DELAY_S="600",  # an encoder run that does not come back
    )
    config = {
        "backend": "hailo",
        "hailo": {
            "vlm_hef": str(make_vlm_hef(tmp_path / "hef", DEMO_VLM_DIR)),
            "clip_hef": str(make_clip_hef(tmp_path / "hef", DEMO_CLIP_DIR)),
            "read_timeout_s": 900,  # HailoRT's own timeout would come far too late
        },
        "inference": {"timeout_s": 2},  # the bound on any one step of work
    }
    service = Service(tmp_path, config, env).wait_ready()
    try:
        url, _ = image_data_url(7)
        reply = service.http.post("/v1/embeddings/image", json={"images": [url]}, timeout=120)
        # Not a hang: the request ends within its deadline (504), or as the stuck worker leaves (503).
        assert (reply.status_code, reply.json()["error"]["code"]) in (
            (503, "worker_unavailable"),
            (504, "timeout"),
        )
        wait_until(lambda: "compute_stalled" in service.logs(), timeout_s=30)
        wait_until(lambda: service.http.get("/health").json()["worker_restarts"] >= 1, timeout_s=60)
        assert "clip has run for" in service.logs()
    finally:
        service.stop()
