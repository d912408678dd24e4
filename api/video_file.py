"""Decode a video file from a request into the frames of a clip, with PyAV (FFmpeg's libraries).

PyAV is the decoder because its wheels bundle FFmpeg for x86_64 and aarch64 (the Pi 5) and it is kept
current by its maintainers; it is imported only when a video file arrives. Only MP4/QuickTime,
Matroska/WebM and AVI files are opened, each with its demuxer named from the file's magic bytes, so
FFmpeg never probes the bytes as a playlist or any other format that could make it open other files
or URLs. Sizes are checked from the headers before decoding (duration, frame size), frames are taken
at `fps`, scaled down by FFmpeg to about `max_frame_pixels`, and then thinned to `max_frames`.
Runs in the API's thread pool: it is synchronous and touches no shared state.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from api.errors import APIError

# (magic bytes, offset, FFmpeg demuxer, name for messages)
_CONTAINERS: tuple[tuple[bytes, int, str, str], ...] = (
    (b"ftyp", 4, "mov", "MP4"),
    (b"moov", 4, "mov", "QuickTime"),
    (b"mdat", 4, "mov", "QuickTime"),
    (b"\x1a\x45\xdf\xa3", 0, "matroska", "Matroska/WebM"),
    (b"AVI ", 8, "avi", "AVI"),
)
ACCEPTED_VIDEO_FORMATS = "MP4, QuickTime, Matroska/WebM or AVI"


@dataclass(frozen=True)
class VideoLimits:
    """What a video file may be (config `video.*`, and api.max_image_pixels for its frame size)."""

    fps: float
    max_frames: int
    max_frame_pixels: int
    max_duration_s: float
    max_source_pixels: int


def evenly(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over range(count), first and last included (all when fewer)."""
    if count <= keep:
        return list(range(count))
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def _demuxer(data: bytes, param: str) -> str:
    for magic, offset, demuxer, _ in _CONTAINERS:
        if data[offset : offset + len(magic)] == magic and (demuxer != "avi" or data[:4] == b"RIFF"):
            return demuxer
    raise APIError(
        415,
        f"The video file is not one of the accepted containers ({ACCEPTED_VIDEO_FORMATS}).",
        "unsupported_video_type",
        param,
    )


def decode_video(data: bytes, limits: VideoLimits, param: str) -> list[np.ndarray]:
    """The clip's frames (RGB uint8, at most limits.max_frames, in order) of the video file `data`.

    Raises APIError: 415 `unsupported_video_type`, 400 `invalid_video` (undecodable, no video stream,
    no frames), 400 `video_too_long`, 413 `video_too_large` (frame size over api.max_image_pixels).
    """
    demuxer = _demuxer(data, param)
    import av  # a dependency, imported only when a video file arrives (it loads FFmpeg's libraries)

    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
            stream = next((s for s in container.streams if s.type == "video"), None)
            if stream is None:
                raise APIError(400, "The video file has no video stream.", "invalid_video", param)
            _check_header(container, stream, limits, param)
            frames = _sampled(container, stream, limits, param)
    except av.FFmpegError as error:
        raise APIError(
            400, f"The video file could not be decoded ({error}).", "invalid_video", param
        ) from None
    if not frames:
        raise APIError(400, "The video file holds no frames.", "invalid_video", param)
    return [frames[i] for i in evenly(len(frames), limits.max_frames)]


def _check_header(container: object, stream: object, limits: VideoLimits, param: str) -> None:
    width, height = stream.codec_context.width, stream.codec_context.height  # type: ignore[attr-defined]
    if width * height > limits.max_source_pixels:
        raise APIError(
            413,
            f"The video's frames are {width}x{height}, over the limit of {limits.max_source_pixels} pixels.",
            "video_too_large",
            param,
        )
    seconds = _duration(container, stream)
    if seconds is not None and seconds > limits.max_duration_s:
        raise APIError(
            400,
            f"The video is {seconds:.1f} s long, over the limit of {limits.max_duration_s:g} s "
            "(video.max_duration_s); send a shorter clip.",
            "video_too_long",
            param,
        )


def _duration(container: object, stream: object) -> float | None:
    if stream.duration is not None and stream.time_base is not None:  # type: ignore[attr-defined]
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    total = container.duration  # type: ignore[attr-defined]
    return total / 1_000_000 if total is not None else None


def _sampled(container: object, stream: object, limits: VideoLimits, param: str) -> list[np.ndarray]:
    """Frames at limits.fps (by presentation time), scaled to about limits.max_frame_pixels."""
    step = 1.0 / limits.fps
    most = math.ceil(limits.max_duration_s * limits.fps) + 1  # a file that lied about its duration
    frames: list[np.ndarray] = []
    due = 0.0
    for index, frame in enumerate(container.decode(stream)):  # type: ignore[attr-defined]
        moment = frame.time if frame.time is not None else index * step
        if moment + 1e-6 < due:
            continue
        if len(frames) == most:
            raise APIError(400, "The video is longer than video.max_duration_s.", "video_too_long", param)
        scale = min(1.0, math.sqrt(limits.max_frame_pixels / (frame.width * frame.height)))
        width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        frames.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
        due = moment + step
    return frames
