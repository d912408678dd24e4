"""The forms a clip takes in a chat request, declared once, and the reference each one names.

Qwen's own form lists the frames: `{"type": "video", "video": [frame, ...]}`, each frame in any form an
image takes (data URL, bare base64, http(s) URL when allowed, `{"url": ...}` or an image part), in order.
vLLM's form names a video file: `{"type": "video_url", "video_url": {"url": ...}}` (or the URL alone),
a data URL (`data:video/mp4;base64,...`) or an http(s) URL where remote fetch is allowed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag

from api.conversation import ClipRef
from api.image_input import ImageInput, ImageString, image_ref, url_ref
from api.schema import Body, json_kind, tag_by


class VideoFramesPart(Body):
    type: Literal["video"]
    video: Annotated[list[ImageInput], Field(min_length=1, description="The clip's frames, in order")]


class VideoURL(Body):
    url: ImageString = Field(description="A video file: a data URL, or an http(s) URL when allowed")


class VideoURLPart(Body):
    type: Literal["video_url"]
    video_url: Annotated[
        Annotated[ImageString, Tag("~string")] | Annotated[VideoURL, Tag("~object")],
        tag_by(json_kind, "must be a video URL string or an object with a 'url' string"),
    ]


def clip_ref(part: VideoFramesPart | VideoURLPart, param: str) -> ClipRef:
    """The clip a part names, with the fields that hold it."""
    if isinstance(part, VideoFramesPart):
        frames = tuple(image_ref(frame, f"{param}.video[{i}]") for i, frame in enumerate(part.video))
        return ClipRef(f"{param}.video", frames=frames)
    where = f"{param}.video_url"
    return ClipRef(where, file=url_ref(part.video_url, where))
