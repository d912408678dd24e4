"""Bring a request's images in: read each reference (inline or fetched), decode it off the event loop.

Decoding runs in the thread pool so the event loop keeps streaming other requests' tokens; JPEGs are
decoded straight to about the pixel budget of the model that will see them. Only the header is read
on the loop, and files too small to be worth a thread hop (`image_intake.is_small`: a crop of at most
256x256 pixels in at most 64 KiB) are decoded there too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool

from api.conversation import ImageRef
from api.image_intake import ImageLimits, decode_opened, is_small, open_image
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
    image = open_image(data, limits, ref.param)
    if is_small(image, len(data)):
        pixels = decode_opened(image, limits, target_pixels, min_side=min_side, param=ref.param)
    else:
        pixels = await run_in_threadpool(
            decode_opened, image, limits, target_pixels, min_side=min_side, param=ref.param
        )
    services.metrics.images.inc()
    return pixels


async def load_images(
    refs: Sequence[ImageRef], services: Services, target_pixels: int | None, min_side: int = 0
) -> list[np.ndarray]:
    """Every image of a request, in order; the first failure is raised as its APIError."""
    if len(refs) == 1:  # the common case, without a task per image
        return [await load_image(refs[0], services, target_pixels, min_side)]
    return list(await asyncio.gather(*(load_image(r, services, target_pixels, min_side) for r in refs)))
