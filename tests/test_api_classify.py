"""POST /v1/classify through the running service on the demo CLIP: scores, cuts, multi-label, images,
regions, the text-embedding cache (also across a restart), batching, and service during a VLM stream
(on the HailoRT double, whose token pace is set)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapes_world as sw
from clip_testkit import LABELS, metric, red_circle, scene_url, two_shapes
from double_service import double_service
from service import Service


def classify(service: Service, **body: Any) -> dict[str, Any]:
    response = service.http.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize("ensemble", [False, True])
def test_a_drawn_red_circle_ranks_red_circle_first(service: Service, ensemble: bool) -> None:
    answer = classify(service, image=red_circle(), prompts=LABELS, ensemble=ensemble)
    ranking = answer["classifications"]
    assert ranking[0]["text"] == "red circle"
    assert [c["rank"] for c in ranking] == list(range(1, len(LABELS) + 1))
    assert sorted(c["text"] for c in ranking) == sorted(LABELS)
    scores = [c["score"] for c in ranking]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-4)  # the default: a softmax over the prompts
    assert answer["model"] == "clip-demo" and answer["inference_time_ms"] > 0


def test_threshold_and_top_k_cut_the_ranking(service: Service) -> None:
    image = red_circle()
    full = classify(service, image=image, prompts=LABELS)["classifications"]
    threshold = full[3]["score"]  # the fourth score: exactly four labels reach it (ties aside)
    expected = [c["text"] for c in full if c["score"] >= threshold]
    cut = classify(service, image=image, prompts=LABELS, threshold=threshold)["classifications"]
    assert [c["text"] for c in cut] == expected and len(cut) >= 4
    top = classify(service, image=image, prompts=LABELS, top_k=2)["classifications"]
    assert [(c["text"], c["rank"]) for c in top] == [(full[0]["text"], 1), (full[1]["text"], 2)]
    both = classify(service, image=image, prompts=LABELS, threshold=threshold, top_k=3)["classifications"]
    assert [c["text"] for c in both] == expected[:3]
    assert classify(service, image=image, prompts=LABELS, threshold=1.0)["classifications"] == []


def test_multi_label_lets_both_shapes_of_a_picture_pass(service: Service) -> None:
    image = scene_url(two_shapes(("red", "circle"), ("purple", "circle")))
    prompts = [f"{colour} circle" for colour in sw.COLOUR_NAMES]
    true = {"red circle", "purple circle"}
    scores = {
        c["text"]: c["score"]
        for c in classify(service, image=image, prompts=prompts, multi_label=True)["classifications"]
    }
    lowest_true = min(scores[t] for t in true)
    highest_false = max(s for t, s in scores.items() if t not in true)
    assert lowest_true > highest_false
    threshold = round((lowest_true + highest_false) / 2, 6)
    passed = classify(service, image=image, prompts=prompts, multi_label=True, threshold=threshold)
    assert {c["text"] for c in passed["classifications"]} == true


def test_multi_label_takes_the_requests_negative_prompts(service: Service) -> None:
    image = red_circle()
    prompts = ["red circle", "blue square"]
    configured = classify(service, image=image, prompts=prompts, multi_label=True)["classifications"]
    alone = classify(
        service, image=image, prompts=prompts, multi_label=True, negative_prompts=["a photo of a red circle."]
    )["classifications"]
    by_text = {c["text"]: c["score"] for c in configured}
    assert {c["text"]: c["score"] for c in alone} != by_text
    # with the ensemble the negatives are used as written, in their own request
    ensembled = classify(service, image=image, prompts=prompts, multi_label=True, ensemble=True)
    assert ensembled["classifications"][0]["text"] == "red circle"


def test_scores_match_the_probabilities_of_v1_match(service: Service) -> None:
    image = red_circle(7)
    prompts = ["red circle", "blue square", "green triangle"]
    scores = {
        c["text"]: c["score"] for c in classify(service, image=image, prompts=prompts)["classifications"]
    }
    response = service.http.post(
        "/v1/match", json={"images": [image], "texts": prompts, "probabilities": True}
    )
    assert response.status_code == 200, response.text
    probabilities = response.json()["probabilities"][0]
    assert [scores[p] for p in prompts] == pytest.approx(probabilities, abs=2e-6)


def test_images_give_one_result_each_in_order(service: Service) -> None:
    red = red_circle()
    blue = scene_url(two_shapes(("blue", "square"), ("blue", "square")))
    answer = classify(service, images=[red, blue, red], prompts=LABELS, top_k=1)
    assert [r["index"] for r in answer["results"]] == [0, 1, 2]
    tops = [r["classifications"][0]["text"] for r in answer["results"]]
    assert tops[0] == tops[2] == "red circle" and tops[1].startswith("blue")
    assert "classifications" not in answer and answer["model"] == "clip-demo"


def test_regions_classify_each_crop(service: Service) -> None:
    scene = two_shapes(("red", "circle"), ("blue", "square"))
    regions = [[x0 - 8, y0 - 8, x1 + 8, y1 + 8] for x0, y0, x1, y1 in (s.box for s in scene.shapes)]
    answer = classify(service, image=scene_url(scene), prompts=LABELS, regions=regions, top_k=1)
    assert [r["index"] for r in answer["results"]] == [0, 1]
    assert [r["region"] for r in answer["results"]] == regions
    assert [r["classifications"][0]["text"] for r in answer["results"]] == ["red circle", "blue square"]


def test_the_cache_spares_the_text_encoder(service: Service) -> None:
    prompts = [f"{label} number {uuid.uuid4().hex[:6]}" for label in LABELS[:4]]  # never asked before
    image = red_circle()
    misses, hits = (
        metric(service, "hailo_vision_clip_text_cache_misses"),
        metric(service, "hailo_vision_clip_text_cache_hits"),
    )
    first = classify(service, image=image, prompts=prompts)
    after_first = metric(service, "hailo_vision_clip_text_cache_misses")
    assert after_first - misses == len(prompts)
    second = classify(service, image=image, prompts=prompts)
    assert metric(service, "hailo_vision_clip_text_cache_misses") == after_first
    assert metric(service, "hailo_vision_clip_text_cache_hits") - hits == len(prompts)
    assert second["classifications"] == first["classifications"]


def test_the_cache_survives_a_restart(tmp_path: Path) -> None:
    config = {"clip": {"cache_file": str(tmp_path / "clip-cache.npz")}}
    prompts = LABELS[:6]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = Service(tmp_path / "first", config).wait_ready()
    try:
        before = classify(first, image=red_circle(), prompts=prompts, ensemble=True)
        assert metric(first, "hailo_vision_clip_text_cache_misses") == len(prompts)
    finally:
        assert first.stop() == 0  # the worker saves its cache as it stops
    second = Service(tmp_path / "second", config).wait_ready()
    try:
        assert metric(second, "hailo_vision_clip_text_cache_entries") == len(prompts)
        after = classify(second, image=red_circle(), prompts=prompts, ensemble=True)
        assert metric(second, "hailo_vision_clip_text_cache_misses") == 0
        assert metric(second, "hailo_vision_clip_text_cache_hits") == len(prompts)
        assert after["classifications"] == before["classifications"]
    finally:
        second.stop()


def test_concurrent_requests_share_encoder_batches(tmp_path: Path) -> None:
    clients = 8
    batched = Service(
        tmp_path, {"resources": {"max_batch_size": 8}, "clip": {"batch_wait_ms": 50}}
    ).wait_ready()
    try:
        images = [red_circle(seed) for seed in range(3, 3 + clients)]
        classify(batched, image=images[0], prompts=LABELS)  # text embeddings cached, encoder warm
        runs = metric(batched, "hailo_vision_clip_encoder_runs")
        encoded = metric(batched, "hailo_vision_clip_images_encoded")
        start = threading.Barrier(clients)
        answers: list[dict[str, Any] | None] = [None] * clients

        def client(index: int) -> None:
            with httpx.Client(base_url=batched.base_url, timeout=30) as http:
                start.wait()
                answers[index] = http.post(
                    "/v1/classify", json={"image": images[index], "prompts": LABELS}
                ).json()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(a is not None and a["classifications"][0]["text"] == "red circle" for a in answers), (
            answers
        )
        assert metric(batched, "hailo_vision_clip_images_encoded") - encoded == clients
        assert metric(batched, "hailo_vision_clip_encoder_runs") - runs < clients
    finally:
        batched.stop()


def test_classify_is_served_during_a_long_generation(tmp_path: Path) -> None:
    """On the HailoRT double at 50 ms a token, a 2000-token answer runs 100 s: the classification is
    answered while it still runs, by a margin no loaded machine closes (no race on the demo model's
    speed)."""
    service, _ = double_service(tmp_path, clip_quantized=False, HAILO_DOUBLE_TOKEN_DELAY_S="0.05")
    service.wait_ready()
    chat = {
        "messages": [{"role": "user", "content": "Describe the shapes."}],
        "max_tokens": 2000,
        "stream": True,
    }
    try:
        with (
            httpx.Client(base_url=service.base_url, timeout=60) as http,
            http.stream("POST", "/v1/chat/completions", json=chat) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.iter_lines()
            while '"content":""' in (line := next(lines)) or not line.startswith("data: {"):
                pass  # until the first generated token: the generation is running
            answer = classify(service, image=red_circle(), prompts=LABELS)
            assert answer["classifications"][0]["text"] == "red circle"
            assert service.http.get("/health").json()["in_flight"] >= 1  # the answer still runs
    finally:
        service.stop()
