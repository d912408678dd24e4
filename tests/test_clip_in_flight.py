"""A classify request counts once in flight, even when it asks the worker twice (multi_label + ensemble).

The Hailo double's encoder takes half a second per run here, so the request is seen while it waits.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import make_clip_hef, make_vlm_hef
from service import Service, image_data_url


def test_a_multi_label_ensemble_classify_is_one_request_in_flight(tmp_path: Path) -> None:
    env = subprocess_env(
        {},
        HAILO_DOUBLE_STATE_DIR=str(tmp_path / "device"),
        HAILO_DOUBLE_INFER_DELAY_S="0.5",
    )
    config = {
        "backend": "hailo",
        "model": {"warmup": False},
        "hailo": {
            "vlm_hef": str(make_vlm_hef(tmp_path / "hef", DEMO_VLM_DIR)),
            "clip_hef": str(make_clip_hef(tmp_path / "hef", DEMO_CLIP_DIR)),
        },
    }
    service = Service(tmp_path, config, env).wait_ready()
    try:
        url, _ = image_data_url(3)
        body = {
            "image": url,
            "prompts": ["a red circle", "a blue square"],
            "multi_label": True,
            "ensemble": True,
        }
        replies: list[int] = []
        request = threading.Thread(
            target=lambda: replies.append(
                service.http.post("/v1/classify", json=body, timeout=60).status_code
            )
        )
        request.start()
        seen = set()
        while request.is_alive():
            seen.add(service.http.get("/health").json()["in_flight"])
            time.sleep(0.02)
        request.join()
        assert replies == [200]
        assert seen <= {0, 1} and 1 in seen
        assert service.http.get("/health").json()["in_flight"] == 0
    finally:
        service.stop()
