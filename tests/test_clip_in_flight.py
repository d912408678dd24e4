"""A classify request counts once in flight, even when it asks the worker twice (multi_label + ensemble).

The Hailo double's encoder takes half a second per run here, so the request is seen while it waits.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from double_service import double_service
from service import image_data_url


def test_a_multi_label_ensemble_classify_is_one_request_in_flight(tmp_path: Path) -> None:
    service, _ = double_service(tmp_path, {"model": {"warmup": False}}, HAILO_DOUBLE_INFER_DELAY_S="0.5")
    service.wait_ready()
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
