"""/v1/caption and /v1/vision/analyze on the demo VLM, through the running service."""

from __future__ import annotations

import shapes_world
from service import Service, image_data_url


def test_caption_mentions_the_shape(service: Service) -> None:
    right = 0
    for seed in range(5):
        url, scene = image_data_url(seed=8000 + seed)
        response = service.http.post("/v1/caption", json={"image": url, "max_length": 20, "min_length": 1})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"caption", "inference_time_ms", "model"}
        assert body["model"] == "qwen2-vl-demo" and body["inference_time_ms"] > 0
        right += scene.shapes[0].kind in body["caption"]
    assert right >= 4, f"{right}/5 captions name the shape"


def test_caption_detail_and_image_forms(service: Service) -> None:
    url, _ = image_data_url(seed=8101)
    detailed = service.http.post("/v1/caption", json={"image": {"url": url}, "detail": "detailed"})
    assert detailed.status_code == 200 and detailed.json()["caption"]
    bad = service.http.post("/v1/caption", json={"image": url, "min_length": 9, "max_length": 3})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "min_length"


def test_analyze_answers_per_image(service: Service) -> None:
    images = [image_data_url(seed=8200 + i) for i in range(3)]
    body = {
        "images": [url for url, _ in images],
        "prompt": shapes_world.QUESTIONS["colour"],
        "temperature": 0,
        "max_tokens": 8,
        "return_individual_results": True,
    }
    response = service.http.post("/v1/vision/analyze", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["results"]) == 3 and answer["total_inference_time_ms"] > 0
    right = 0
    for result, (url, scene) in zip(answer["results"], images, strict=True):
        assert result["image_url"] == url and result["finish_reason"] in ("stop", "length")
        assert result["prompt_tokens"] > 20 and result["inference_time_ms"] > 0
        right += shapes_world.is_correct(result["analysis"], shapes_world.answer(scene, "colour"))
    assert right >= 2
    plain = service.http.post("/v1/vision/analyze", json={**body, "return_individual_results": False})
    assert all(set(r) == {"image_url", "analysis"} for r in plain.json()["results"])
