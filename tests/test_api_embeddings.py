"""/v1/embeddings (OpenAI's shape, with the openai client), /v1/embeddings/image, /v1/embeddings/text and
/v1/match through the running service on the demo CLIP."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import openai
import pytest
from clip_testkit import red_circle, scene_url, two_shapes
from service import Service

TEXTS = ["a photo of a red circle", "a photo of a blue square"]


def post(service: Service, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = service.http.post(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def vectors(answer: dict[str, Any]) -> np.ndarray:
    assert [item["index"] for item in answer["data"]] == list(range(len(answer["data"])))
    assert all(item["object"] == "embedding" for item in answer["data"])
    return np.array([item["embedding"] for item in answer["data"]], dtype=np.float32)


@pytest.fixture(scope="module")
def images() -> list[str]:
    """A red circle and a blue square: the pictures TEXTS describe, in that order."""
    return [red_circle(), scene_url(two_shapes(("blue", "square"), ("blue", "square")))]


@pytest.fixture(scope="module")
def dim(service: Service) -> int:
    model = service.http.get("/v1/models/clip-demo").json()
    return int(model["embedding_dim"])


def test_openai_client_embeds_texts(service: Service, dim: int) -> None:
    client = openai.OpenAI(base_url=f"{service.base_url}/v1", api_key="unused")
    result = client.embeddings.create(model="clip-demo", input=TEXTS)  # the client asks for base64
    assert result.model == "clip-demo" and len(result.data) == 2
    matrix = np.array([item.embedding for item in result.data])
    assert matrix.shape == (2, dim)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert result.usage.prompt_tokens == result.usage.total_tokens > len(TEXTS)
    single = client.embeddings.create(model="clip-demo", input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, matrix[0], atol=1e-6)


def test_mixed_input_keeps_its_order_and_matches_pairs(service: Service, images: list[str], dim: int) -> None:
    red, blue = images
    mixed = [red, TEXTS[0], {"type": "image_url", "image_url": {"url": blue}}, TEXTS[1]]
    answer = post(service, "/v1/embeddings", {"input": mixed})
    matrix = vectors(answer)
    assert matrix.shape == (4, dim) and answer["model"] == "clip-demo"
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    image_embeds, text_embeds = matrix[[0, 2]], matrix[[1, 3]]
    cosines = image_embeds @ text_embeds.T
    assert cosines.argmax(axis=1).tolist() == [0, 1]  # each picture is nearest its own description
    assert cosines.argmax(axis=0).tolist() == [0, 1]
    text_only = vectors(post(service, "/v1/embeddings", {"input": TEXTS}))
    np.testing.assert_allclose(text_only, text_embeds, atol=1e-6)
    assert (
        answer["usage"]["prompt_tokens"]
        == post(service, "/v1/embeddings", {"input": TEXTS})["usage"]["prompt_tokens"]
    )
    image_only = post(service, "/v1/embeddings", {"input": [red]})
    assert image_only["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


def test_base64_is_the_little_endian_float32_of_the_float_list(service: Service, images: list[str]) -> None:
    body = {"model": "clip-demo", "input": [images[0], TEXTS[1]], "user": "tests"}
    floats = vectors(post(service, "/v1/embeddings", {**body, "encoding_format": "float"}))
    packed = post(service, "/v1/embeddings", {**body, "encoding_format": "base64"})
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in packed["data"]])
    np.testing.assert_array_equal(decoded, floats)


def test_image_and_text_routes_agree_with_v1_embeddings(service: Service, images: list[str]) -> None:
    by_image_route = vectors(post(service, "/v1/embeddings/image", {"images": images}))
    by_text_route = vectors(post(service, "/v1/embeddings/text", {"texts": TEXTS}))
    openai_shape = vectors(post(service, "/v1/embeddings", {"input": [*images, *TEXTS]}))
    np.testing.assert_allclose(by_image_route, openai_shape[:2], atol=1e-6)
    np.testing.assert_allclose(by_text_route, openai_shape[2:], atol=1e-6)
    ensembled = vectors(post(service, "/v1/embeddings/text", {"texts": ["red circle"], "ensemble": True}))
    plain = vectors(post(service, "/v1/embeddings/text", {"texts": ["red circle"]}))
    assert np.linalg.norm(ensembled[0]) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(ensembled, plain)  # the mean over the templates, not the bare text
    packed = post(service, "/v1/embeddings/text", {"texts": TEXTS[:1], "encoding_format": "base64"})
    assert np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), "<f4") == pytest.approx(
        by_text_route[0]
    )


def test_match_gives_cosines_and_per_image_probabilities(service: Service, images: list[str]) -> None:
    answer = post(service, "/v1/match", {"images": images, "texts": TEXTS, "probabilities": True})
    similarity = np.array(answer["similarity"])
    probabilities = np.array(answer["probabilities"])
    assert similarity.shape == probabilities.shape == (2, 2) and answer["model"] == "clip-demo"
    assert np.trace(similarity) > similarity[0, 1] + similarity[1, 0]
    assert similarity.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    embedded = vectors(post(service, "/v1/embeddings", {"input": [*images, *TEXTS]}))
    np.testing.assert_allclose(similarity, embedded[:2] @ embedded[2:].T, atol=2e-6)
    assert "probabilities" not in post(service, "/v1/match", {"images": images[:1], "texts": TEXTS})
