"""Every malformed field and every limit of the CLIP endpoints is a 400 naming its param (or the proper
status for images and models), and the service keeps serving."""

from __future__ import annotations

from typing import Any

import pytest
from clip_testkit import red_circle
from service import Service

from npu_worker.config import ClipConfig

LIMITS = ClipConfig()  # the service fixture runs with the default limits
IMAGE = red_circle()
GOOD = {"image": IMAGE, "prompts": ["red circle", "blue square"]}


def _assert_400(service: Service, path: str, body: Any, param: str, mentions: str = "") -> None:
    response = service.http.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    assert mentions in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([1, 2], "body"),
        ({"prompts": ["a"]}, "image"),
        ({**GOOD, "images": [IMAGE]}, "image"),
        ({**GOOD, "image": 5}, "image"),
        ({**GOOD, "image": {"url": ""}}, "image.url"),
        ({**GOOD, "image": {"type": "image_url", "image_url": {"url": 3}}}, "image.image_url.url"),
        ({"images": [], "prompts": ["a"]}, "images"),
        ({"images": [IMAGE, 7], "prompts": ["a"]}, "images[1]"),
        ({"image": IMAGE}, "prompts"),
        ({"image": IMAGE, "prompts": "red circle"}, "prompts"),
        ({"image": IMAGE, "prompts": []}, "prompts"),
        ({"image": IMAGE, "prompts": ["a", ""]}, "prompts[1]"),
        ({"image": IMAGE, "prompts": ["a", 3]}, "prompts[1]"),
        ({"image": IMAGE, "prompts": ["a", "b", "a"]}, "prompts[2]"),
        ({**GOOD, "threshold": "high"}, "threshold"),
        ({**GOOD, "threshold": 1.5}, "threshold"),
        ({**GOOD, "threshold": -0.1}, "threshold"),
        ({**GOOD, "top_k": 0}, "top_k"),
        ({**GOOD, "top_k": 1.5}, "top_k"),
        ({**GOOD, "top_k": True}, "top_k"),
        ({**GOOD, "ensemble": "yes"}, "ensemble"),
        ({**GOOD, "multi_label": 1}, "multi_label"),
        ({**GOOD, "multi_label": True, "negative_prompts": []}, "negative_prompts"),
        ({**GOOD, "multi_label": True, "negative_prompts": ["x", None]}, "negative_prompts[1]"),
        ({**GOOD, "model": 3}, "model"),
        ({**GOOD, "regions": "all"}, "regions"),
        ({**GOOD, "regions": [[0, 0, 10]]}, "regions[0]"),
        ({**GOOD, "regions": [[0, 0, 10, "10"]]}, "regions[0][3]"),
        ({**GOOD, "regions": [[0, 0, 10, 10], [5, 5, 5, 9]]}, "regions[1]"),
        ({**GOOD, "regions": [[20, 0, 10, 10]]}, "regions[0]"),
        ({"images": [IMAGE], "prompts": ["a"], "regions": [[0, 0, 10, 10]]}, "regions"),
        ({**GOOD, "regions": [[0, 0, 10, 10], [0, 0, 10_000, 10]]}, "regions[1]"),  # outside the image
        ({**GOOD, "regions": [[-1, 0, 10, 10]]}, "regions[0]"),
    ],
)
def test_malformed_classify_fields(service: Service, body: Any, param: str) -> None:
    _assert_400(service, "/v1/classify", body, param)


def test_classify_limits_name_their_config_key(service: Service) -> None:
    too_many = [f"label {i}" for i in range(LIMITS.max_prompts + 1)]
    _assert_400(service, "/v1/classify", {"image": IMAGE, "prompts": too_many}, "prompts", "clip.max_prompts")
    long_prompt = "x" * (LIMITS.max_prompt_chars + 1)
    _assert_400(
        service,
        "/v1/classify",
        {"image": IMAGE, "prompts": ["a", long_prompt]},
        "prompts[1]",
        "max_prompt_chars",
    )
    images = [IMAGE] * (LIMITS.max_images + 1)
    _assert_400(service, "/v1/classify", {"images": images, "prompts": ["a"]}, "images", "clip.max_images")
    regions = [[0, 0, 10, 10]] * (LIMITS.max_regions + 1)
    _assert_400(service, "/v1/classify", {**GOOD, "regions": regions}, "regions", "clip.max_regions")
    negatives = [f"not {i}" for i in range(LIMITS.max_prompts + 1)]
    body = {**GOOD, "multi_label": True, "negative_prompts": negatives}
    _assert_400(service, "/v1/classify", body, "negative_prompts", "clip.max_prompts")
    at_the_limits = {"image": IMAGE, "prompts": too_many[:-1], "regions": regions[:-1], "top_k": 1}
    assert service.http.post("/v1/classify", json=at_the_limits).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["a", " "]}, "input[1]"),
        ({"input": [1, 2, 3]}, "input[0]"),
        ({"input": [[1, 2]]}, "input[0]"),
        ({"input": ["a", None]}, "input[1]"),
        ({"input": [{"type": "image_url"}]}, "input[0].url"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 32}, "dimensions"),
        ({"input": "a", "model": ["clip-demo"]}, "model"),
        ({"input": "a", "user": 5}, "user"),
        ({"input": "x" * (LIMITS.max_prompt_chars + 1)}, "input"),
        ({"input": ["a"] * (LIMITS.max_prompts + 1)}, "input"),
        ({"input": [IMAGE] * (LIMITS.max_images + 1)}, "input"),
    ],
)
def test_malformed_embeddings_fields(service: Service, body: Any, param: str) -> None:
    _assert_400(service, "/v1/embeddings", body, param)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings/image", {}, "images"),
        ("/v1/embeddings/image", {"images": "x"}, "images"),
        ("/v1/embeddings/image", {"images": [IMAGE] * (LIMITS.max_images + 1)}, "images"),
        ("/v1/embeddings/image", {"images": [IMAGE], "encoding_format": "hex"}, "encoding_format"),
        ("/v1/embeddings/text", {"texts": []}, "texts"),
        ("/v1/embeddings/text", {"texts": ["a", 2]}, "texts[1]"),
        ("/v1/embeddings/text", {"texts": ["a"], "ensemble": "no"}, "ensemble"),
        ("/v1/match", {"texts": ["a"]}, "images"),
        ("/v1/match", {"images": [IMAGE]}, "texts"),
        ("/v1/match", {"images": [IMAGE], "texts": ["a"], "probabilities": "yes"}, "probabilities"),
    ],
)
def test_malformed_fields_of_the_other_routes(service: Service, path: str, body: Any, param: str) -> None:
    _assert_400(service, path, body, param)


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/embeddings", "/v1/match"])
def test_a_chat_model_or_unknown_model_is_404(service: Service, path: str) -> None:
    bodies = {
        "/v1/classify": GOOD,
        "/v1/embeddings": {"input": "a"},
        "/v1/match": {"images": [IMAGE], "texts": ["a"]},
    }
    for model in ("qwen2-vl-demo", "no-such-model"):
        response = service.http.post(path, json={**bodies[path], "model": model})
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "model_not_found"


def test_bad_images_get_the_image_intake_errors(service: Service) -> None:
    response = service.http.post("/v1/classify", json={**GOOD, "image": "data:image/png;base64,iVBORw0KGgo="})
    assert response.status_code == 400 and response.json()["error"]["param"] == "image"
    response = service.http.post("/v1/embeddings", json={"input": ["data:text/plain;base64,aGVsbG8="]})
    assert response.status_code in (400, 415) and response.json()["error"]["param"] == "input[0]"
    assert service.http.post("/v1/classify", json=GOOD).status_code == 200  # still serving
