"""Bring a request's clips in: each becomes at most video.max_frames RGB frames, in order.

A frame list is thinned first (evenly, first and last kept), so only the frames the model will see are
decoded, each like an image to about video.max_frame_pixels. A video file is read like an image
reference (data URL, bare base64, or an http(s) URL where remote images are allowed), within
video.max_bytes, and decoded off the event loop (`video_file`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool

from api.conversation import ClipRef
from api.errors import APIError
from api.image_loading import load_images
from api.image_sources import ImageSourcePolicy, read_image_reference
from api.services import Services
from api.video_file import VideoLimits, decode_video, evenly


async def load_clip(clip: ClipRef, services: Services) -> tuple[np.ndarray, ...]:
    video = services.config.video
    if clip.file is None:
        chosen = [clip.frames[i] for i in evenly(len(clip.frames), video.max_frames)]
        return tuple(await load_images(chosen, services, video.max_frame_pixels))
    api = services.config.api
    policy = ImageSourcePolicy(
        max_bytes=video.max_bytes,
        allow_remote=api.allow_remote_images,
        fetch_timeout_s=api.remote_image_timeout_s,
    )
    try:
        data = await read_image_reference(clip.file.ref, clip.file.param, policy)
    except APIError as error:
        if error.code == "image_too_large":
            raise APIError(
                413,
                f"The video file is larger than the limit of {video.max_bytes} bytes (video.max_bytes).",
                "video_too_large",
                error.param,
            ) from None
        raise
    limits = VideoLimits(
        video.fps, video.max_frames, video.max_frame_pixels, video.max_duration_s, api.max_image_pixels
    )
    frames = await run_in_threadpool(decode_video, data, limits, clip.file.param)
    services.metrics.images.inc(len(frames))
    return tuple(frames)


async def load_clips(clips: Sequence[ClipRef], services: Services) -> list[tuple[np.ndarray, ...]]:
    """Every clip of a request, in order; the first failure is raised as its APIError."""
    return list(await asyncio.gather(*(load_clip(clip, services) for clip in clips)))
