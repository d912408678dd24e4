"""The forms an image takes in a request body, declared once, and the reference each one names.

A URL string (data URL, bare base64 or http(s) URL), `{"url": ...}`, or an OpenAI image part
`{"type": "image_url", "image_url": "..." | {"url": ...}}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, Tag

from api.conversation import ImageRef
from api.schema import Body, NonBlank, json_kind, tag_by

ImageString = NonBlank


class ImageURL(Body):
    """OpenAI's image URL object."""

    url: ImageString = Field(description="A data URL, bare base64, or an http(s) URL when allowed")
    detail: str | None = Field(None, description="Accepted and ignored: the model's processor decides")


ImageURLField = Annotated[
    Annotated[ImageString, Tag("~string")] | Annotated[ImageURL, Tag("~object")],
    tag_by(json_kind, "must be an image URL string or an object with a 'url' string"),
]


class ImagePartObject(Body):
    """`{"type": "image_url", "image_url": ...}`, as in OpenAI's chat content parts."""

    type: Literal["image_url", "image"] | None = None
    image_url: ImageURLField


def image_input_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "~string"
    if isinstance(value, dict):
        return "~part" if "image_url" in value else "~object"
    return None


IMAGE_FORMS = (
    "a data URL, base64 or URL string, {'url': ...} or {'type': 'image_url', 'image_url': {'url': ...}}"
)
ImageInput = Annotated[
    Annotated[ImageString, Tag("~string")]
    | Annotated[ImageURL, Tag("~object")]
    | Annotated[ImagePartObject, Tag("~part")],
    tag_by(image_input_tag, f"must be {IMAGE_FORMS}"),
]


class HasURL(Protocol):
    """An object form of a reference: OpenAI's image_url, vLLM's video_url."""

    @property
    def url(self) -> str: ...


def url_ref(value: str | HasURL, param: str) -> ImageRef:
    """The reference in an `image_url` or `video_url` field (a string or an object with `url`)."""
    if isinstance(value, str):
        return ImageRef(value, param)
    return ImageRef(value.url, f"{param}.url")


def image_ref(value: str | ImageURL | ImagePartObject, param: str) -> ImageRef:
    """The reference an ImageInput names, with the field that holds it."""
    if isinstance(value, ImagePartObject):
        return url_ref(value.image_url, f"{param}.image_url")
    return url_ref(value, param)
