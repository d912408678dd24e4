"""The CLIP routes: /v1/classify, /v1/embeddings (OpenAI), /v1/embeddings/image, /v1/embeddings/text
and /v1/match.

Each request is validated and its images decoded here (at about the encoder's input size; regions are
cut from the full-size image), then sent to the worker as one EMBED: the worker batches image-encoder
work across concurrent requests and serves text embeddings from its cache. Scores are computed here
from the returned embeddings (api.clip_scoring).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.clip_request import (
    ClassifyRequest,
    EmbeddingsRequest,
    ImageEmbeddingsRequest,
    MatchRequest,
    OpenAIEmbeddingsRequest,
    Region,
    TextEmbeddingsRequest,
    check_regions,
)
from api.clip_scoring import SCORE_DECIMALS, classify_scores, ranked, similarity, softmax
from api.conversation import ImageRef
from api.image_loading import load_images
from api.routes_info import resolve_model
from api.services import Services, services_of
from npu_worker.backend import ModelInfo
from npu_worker.protocol import Embed

# Images are decoded (and region crops reduced) to keep this many times the encoder's input side.
CROP_SLACK = 2


@dataclass(frozen=True)
class Embedded:
    """One EMBEDDINGS answer: image and text embeddings (L2-normalised rows) and the worker's figures."""

    images: np.ndarray
    texts: np.ndarray
    logit_scale: float
    text_tokens: int
    compute_s: float
    queue_wait_s: float


def _input_side(model: ModelInfo) -> int:
    return min(model.image_size) if model.image_size else 0


async def _load(services: Services, model: ModelInfo, refs: Sequence[ImageRef]) -> list[np.ndarray]:
    """The images decoded to about the encoder's input size (never enlarged)."""
    services.worker.admit()
    side = _input_side(model)
    target = model.image_size[0] * model.image_size[1] if model.image_size else None
    return await load_images(refs, services, target, side)


def _crops(pixels: np.ndarray, regions: Sequence[Region], side: int) -> list[np.ndarray]:
    """Each region of the image, reduced by a whole factor while it keeps CROP_SLACK x the input side."""
    crops = []
    for x0, y0, x1, y1 in regions:
        crop = pixels[y0:y1, x0:x1]
        factor = min(crop.shape[:2]) // (CROP_SLACK * side) if side else 1
        if factor > 1:
            crop = np.asarray(Image.fromarray(crop).reduce(factor))
        crops.append(np.ascontiguousarray(crop))
    return crops


async def _embed(
    services: Services,
    model: ModelInfo,
    images: list[np.ndarray],
    texts: Sequence[str],
    templates: Sequence[str] = (),
) -> Embedded:
    """Send CLIP work to the worker and wait for its embeddings (bounded by inference.timeout_s)."""
    answer = await services.worker.embed(
        lambda rid: Embed(rid, model.id, tuple(texts), tuple(templates), tuple(images)),
        services.config.inference.timeout_s,
    )
    services.metrics.clip_batch_images.observe(answer.batch_images)
    return Embedded(
        answer.image_embeddings,
        answer.text_embeddings,
        answer.logit_scale,
        answer.text_tokens,
        answer.compute_s,
        answer.queue_wait_s,
    )


def _milliseconds(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


async def embed_request(services: Services, model: ModelInfo, req: EmbeddingsRequest) -> Embedded:
    """The request's images and texts embedded by `model` (ensembled when it asks)."""
    images = await _load(services, model, req.images)
    templates = services.config.clip.templates if req.ensemble else ()
    with services.serving():
        return await _embed(services, model, images, req.texts, templates)


def in_input_order(req: EmbeddingsRequest, embedded: Embedded) -> list[np.ndarray]:
    """The embedding of each input, in the request's order (images and texts interleaved)."""
    pending = {"image": iter(embedded.images), "text": iter(embedded.texts)}
    return [next(pending["image" if isinstance(item, ImageRef) else "text"]) for item in req.inputs]


# --- /v1/classify ----------------------------------------------------------------------------------


async def _classify_images(services: Services, model: ModelInfo, req: ClassifyRequest) -> list[np.ndarray]:
    if not req.boxes:
        return await _load(services, model, req.refs)
    services.worker.admit()
    (full,) = await load_images(req.refs, services, None)
    check_regions(req.boxes, full.shape[1], full.shape[0])
    return await run_in_threadpool(_crops, full, req.boxes, _input_side(model))


async def _classify_embeddings(
    services: Services, model: ModelInfo, req: ClassifyRequest, images: list[np.ndarray]
) -> tuple[Embedded, np.ndarray | None]:
    """The images' and prompts' embeddings, and the negative prompts' (multi_label) or None.

    Negative prompts are sentences used as written; with an ensemble they go in a second, text-only
    EMBED (served from the worker's cache after the first time) so the templates never wrap them.
    """
    templates = services.config.clip.templates if req.ensemble else ()
    negative_prompts = req.negatives(services.config.clip) if req.multi_label else ()
    if req.multi_label and templates:
        main, negatives = await asyncio.gather(
            _embed(services, model, images, req.prompts, templates),
            _embed(services, model, [], negative_prompts),
        )
        return main, negatives.texts
    main = await _embed(services, model, images, [*req.prompts, *negative_prompts], templates)
    if not req.multi_label:
        return main, None
    count = len(req.prompts)
    return dataclasses.replace(main, texts=main.texts[:count]), main.texts[count:]


async def classify(request: Request, req: ClassifyRequest) -> Response:
    services = services_of(request)
    model = resolve_model(services, req.model, "clip")
    images = await _classify_images(services, model, req)
    with services.serving():  # once, though multi_label with an ensemble asks the worker twice
        embedded, negatives = await _classify_embeddings(services, model, req, images)
    scores = classify_scores(embedded.images, embedded.texts, embedded.logit_scale, negatives)
    lists = [ranked(req.prompts, row, req.threshold or 0.0, req.top_k) for row in scores]
    mode = "regions" if req.boxes else "image" if req.single else "images"
    services.metrics.classify_requests.labels(mode).inc()
    answer: dict[str, Any]
    if mode == "image":
        answer = {"classifications": lists[0]}
    elif mode == "images":
        answer = {"results": [{"index": i, "classifications": c} for i, c in enumerate(lists)]}
    else:
        answer = {
            "results": [
                {"index": i, "region": list(region), "classifications": c}
                for i, (region, c) in enumerate(zip(req.boxes, lists, strict=True))
            ]
        }
    answer["inference_time_ms"] = _milliseconds(embedded.compute_s)
    answer["model"] = model.id
    return JSONResponse(answer)


# --- embeddings --------------------------------------------------------------------------------------


def _encoded(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """A float list, or base64 of the little-endian float32 bytes (as OpenAI sends)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


async def _embeddings(request: Request, req: EmbeddingsRequest) -> Response:
    services = services_of(request)
    model = resolve_model(services, req.model, "clip")
    embedded = await embed_request(services, model, req)
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(v, req.encoding_format)}
        for i, v in enumerate(in_input_order(req, embedded))
    ]
    tokens = embedded.text_tokens
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": model.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def embeddings(request: Request, body: OpenAIEmbeddingsRequest) -> Response:
    return await _embeddings(request, body.request)


async def image_embeddings(request: Request, body: ImageEmbeddingsRequest) -> Response:
    return await _embeddings(request, body.request)


async def text_embeddings(request: Request, body: TextEmbeddingsRequest) -> Response:
    return await _embeddings(request, body.request)


# --- /v1/match ---------------------------------------------------------------------------------------


def _rounded(matrix: np.ndarray) -> list[list[float]]:
    rows: list[list[float]] = np.round(matrix, SCORE_DECIMALS).tolist()
    return rows


async def match(request: Request, body: MatchRequest) -> Response:
    services = services_of(request)
    model = resolve_model(services, body.model, "clip")
    embedded = await embed_request(services, model, body.request)
    cosines = similarity(embedded.images, embedded.texts)
    answer: dict[str, Any] = {"object": "match", "model": model.id, "similarity": _rounded(cosines)}
    if body.probabilities:
        answer["probabilities"] = _rounded(softmax(embedded.logit_scale * cosines))
    answer["inference_time_ms"] = _milliseconds(embedded.compute_s)
    return JSONResponse(answer)
