"""A compute thread stuck inside a device call is seen, and its request ends instead of hanging."""

from __future__ import annotations

from pathlib import Path

from double_service import double_service
from engine_testkit import Clock
from service import image_data_url, wait_until

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
    config = {
        "hailo": {"read_timeout_s": 900},  # HailoRT's own timeout would come far too late
        "inference": {"timeout_s": 2},  # the bound on any one step of work
    }
    # an encoder run that does not come back
    service, _ = double_service(tmp_path, config, HAILO_DOUBLE_INFER_DELAY_S="600")
    service.wait_ready()
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
