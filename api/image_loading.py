"""Bring a request's images in: read each reference (inline or fetched), decode it off the event loop.

Decoding runs in the thread pool so the event loop keeps streaming other requests' tokens; JPEGs are
decoded straight to about the pixel budget of the model that will see them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool

from api.chat_request import ImageRef
from api.image_intake import ImageLimits, decode_image
from api.image_sources import ImageSourcePolicy, read_image_reference
from api.services import Services


async def load_image(
    ref: ImageRef, services: Services, target_pixels: int | None, min_side: int = 0
) -> np.ndarray:
    api = services.config.api
    policy = ImageSourcePolicy(
        max_bytes=api.max_image_bytes,
        allow_remote=api.allow_remote_images,
        fetch_timeout_s=api.remote_image_timeout_s,
    )
    data = await read_image_reference(ref.ref, ref.param, policy)
    limits = ImageLimits(max_bytes=api.max_image_bytes, max_source_pixels=api.max_image_pixels)
    pixels = await run_in_threadpool(
        decode_image, data, limits, target_pixels, min_side=min_side, param=ref.param
    )
    services.metrics.images.inc()
    return pixels


async def load_images(
    refs: Sequence[ImageRef], services: Services, target_pixels: int | None, min_side: int = 0
) -> list[np.ndarray]:
    """Every image of a request, in order; the first failure is raised as its APIError."""
    return list(await asyncio.gather(*(load_image(r, services, target_pixels, min_side) for r in refs)))
