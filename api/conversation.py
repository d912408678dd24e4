"""A generation request in no client's dialect: turns of text, image and clip references, and sampling.

Every dialect's body (OpenAI chat, Ollama chat and generate, Responses, caption, analyze) becomes a
`Conversation`; one code path (`api.generation`) runs it. Images and clips stay references here, each
with the request field it came from, so that decoding errors name the field in the client's own terms.
A clip is either an ordered list of frames (each an image reference) or one video file.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.errors import APIError
from npu_worker.backend import Role, SamplingParams
from npu_worker.config import Config


@dataclass(frozen=True)
class ImageRef:
    """An image named by the request: `ref` is a data URL, bare base64 or an http(s) URL."""

    ref: str
    param: str  # where it was in the request, e.g. messages[0].content[1].image_url


@dataclass(frozen=True)
class ClipRef:
    """A clip: `frames` (image references, in order), or `file` (a video file's reference)."""

    param: str
    frames: tuple[ImageRef, ...] = ()
    file: ImageRef | None = None


Part = str | ImageRef | ClipRef


@dataclass(frozen=True)
class Turn:
    role: Role
    parts: tuple[Part, ...]
    param: str = ""  # the request field holding this turn's content, for errors


@dataclass(frozen=True)
class Conversation:
    model: str | None
    turns: tuple[Turn, ...]
    params: SamplingParams
    keep_alive: float | None = None  # Ollama's, in seconds: the door passes it on to hailo-ollama

    @property
    def images(self) -> list[ImageRef]:
        return [p for turn in self.turns for p in turn.parts if isinstance(p, ImageRef)]

    @property
    def clips(self) -> list[ClipRef]:
        return [p for turn in self.turns for p in turn.parts if isinstance(p, ClipRef)]


def check_turns(turns: tuple[Turn, ...], where: str, config: Config) -> None:
    """What every dialect requires of a conversation; `where` names its list of messages."""
    max_images, video = config.api.max_images_per_request, config.video
    if not any(t.role == "user" for t in turns):
        raise APIError(400, f"'{where}' needs at least one user message", "invalid_request", where)
    for turn in turns:
        if turn.role != "user" and any(isinstance(p, ImageRef | ClipRef) for p in turn.parts):
            raise APIError(
                400, "images and clips are accepted in user messages only", "invalid_request", turn.param
            )
    clips = [p for t in turns for p in t.parts if isinstance(p, ClipRef)]
    if len(clips) > video.max_clips_per_request:
        raise APIError(
            400,
            f"at most {video.max_clips_per_request} clips per request (video.max_clips_per_request), "
            f"got {len(clips)}",
            "invalid_request",
            where,
        )
    for clip in clips:
        if len(clip.frames) > video.max_input_frames:
            raise APIError(
                400,
                f"a clip may list at most {video.max_input_frames} frames (video.max_input_frames), got "
                f"{len(clip.frames)}; send fewer, or the video file",
                "invalid_request",
                clip.param,
            )
    count = sum(isinstance(p, ImageRef) for t in turns for p in t.parts)
    if count > max_images:
        raise APIError(
            400,
            f"at most {max_images} images per request (api.max_images_per_request), got {count}",
            "invalid_request",
            where,
        )
