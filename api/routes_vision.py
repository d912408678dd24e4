"""hailo-vision's own vision routes, served by the VLM through the shared generation path:
POST /v1/caption (a caption of one image) and POST /v1/vision/analyze (one answer per image).

/v1/vision/analyze asks about its images one at a time: each waits its turn in the worker's queue
like any other request, so a batch never holds the NPU while other clients wait.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.conversation import Conversation
from api.generation import Generation
from api.routes_info import resolve_model
from api.services import Services, services_of
from api.vision_request import AnalyzeRequest, CaptionRequest
from npu_worker.backend import ModelInfo
from npu_worker.protocol import Final

CAPTION_PARAMS = {"messages": "image", "max_tokens": "max_length", "min_tokens": "min_length"}
ANALYZE_PARAMS = {"messages": "images"}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


async def _answer(
    request: Request, services: Services, model: ModelInfo, conversation: Conversation, params: dict[str, str]
) -> tuple[str, Final]:
    generation = await Generation.start(services, model, conversation, False, time.monotonic(), params)
    text = await generation.whole(request)
    return text.strip(), generation.result


async def caption(request: Request, body: CaptionRequest) -> Response:
    services = services_of(request)
    model = resolve_model(services, body.model, "vlm")
    conversation = body.to_conversation(services.config.inference)
    text, final = await _answer(request, services, model, conversation, CAPTION_PARAMS)
    return JSONResponse({"caption": text, "inference_time_ms": _ms(final.compute_s), "model": model.id})


async def analyze(request: Request, body: AnalyzeRequest) -> Response:
    services = services_of(request)
    model = resolve_model(services, body.model, "vlm")
    results: list[dict[str, Any]] = []
    total = 0.0
    for conversation in body.conversations(services.config.inference):
        text, final = await _answer(request, services, model, conversation, ANALYZE_PARAMS)
        total += final.compute_s
        result: dict[str, Any] = {"image_url": conversation.images[0].ref, "analysis": text}
        if body.return_individual_results:
            result |= {
                "inference_time_ms": _ms(final.compute_s),
                "prompt_tokens": final.prompt_tokens,
                "completion_tokens": final.completion_tokens,
                "finish_reason": final.reason,
            }
        results.append(result)
    return JSONResponse({"results": results, "total_inference_time_ms": _ms(total), "model": model.id})
