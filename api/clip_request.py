"""The bodies of the CLIP endpoints (/v1/classify, /v1/embeddings*, /v1/match), declared once.

Types and ranges are declared on the fields; the `clip.*` limits, which come from the configuration,
are checked after them and name their config key. Every body exposes the typed values its route needs
(image references with the field they came from, regions in whole pixels).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, Tag, ValidationInfo, model_validator

from api.conversation import ImageRef
from api.errors import APIError
from api.image_input import ImageInput, ImagePartObject, ImageURL, image_input_tag, image_ref
from api.schema import Body, NonBlank, json_kind, limits, tag_by
from npu_worker.config import ClipConfig

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive
EncodingFormat = Literal["float", "base64"]
Image = str | ImageURL | ImagePartObject
Images = Annotated[list[ImageInput], Field(min_length=1, description="At most clip.max_images")]
Texts = Annotated[list[NonBlank], Field(min_length=1, description="At most clip.max_prompts")]
Box = Annotated[list[float], Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels")]


def _bad(message: str, param: str) -> APIError:
    return APIError(400, message, "invalid_request", param)


def _limit(values: Sequence[Any], key: str, limit: int, limit_name: str) -> None:
    if len(values) > limit:
        raise _bad(f"'{key}' holds {len(values)} items; the limit is {limit} ({limit_name})", key)


def _texts(texts: Sequence[str], key: str, clip: ClipConfig, distinct: bool = False) -> None:
    """The clip.max_prompts and clip.max_prompt_chars limits (and no repeats, when `distinct`)."""
    _limit(texts, key, clip.max_prompts, "clip.max_prompts")
    for index, text in enumerate(texts):
        if len(text) > clip.max_prompt_chars:
            raise _bad(
                f"a text may have at most {clip.max_prompt_chars} characters (clip.max_prompt_chars), "
                f"this one has {len(text)}",
                f"{key}[{index}]",
            )
    if distinct and len(set(texts)) != len(texts):
        first = next(i for i, t in enumerate(texts) if texts.index(t) != i)
        raise _bad(f"'{key}' must not repeat a text; {texts[first]!r} appears twice", f"{key}[{first}]")


def _refs(images: Sequence[Image], key: str) -> tuple[ImageRef, ...]:
    return tuple(image_ref(v, f"{key}[{i}]") for i, v in enumerate(images))


def check_regions(regions: tuple[Region, ...], width: int, height: int) -> None:
    """Every region lies inside the decoded (EXIF-oriented) image of `width` x `height` pixels."""
    for index, (x0, y0, x1, y1) in enumerate(regions):
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise _bad(
                f"the region [{x0}, {y0}, {x1}, {y1}] is outside the {width}x{height} image",
                f"regions[{index}]",
            )


class ClassifyRequest(Body):
    """/v1/classify: one of `image` or `images`, and the prompts to score."""

    model: str | None = None
    image: ImageInput | None = Field(None, description="One image: the answer has `classifications`")
    images: Images | None = Field(None, description="Several images: one result per image")
    prompts: Texts = Field(description="Distinct labels to score; at most clip.max_prompts")
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    ensemble: bool | None = None
    multi_label: bool | None = None
    negative_prompts: Texts | None = None
    regions: Annotated[list[Box], Field(min_length=1, description="Crops of `image`")] | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ClassifyRequest:
        clip = limits(info).clip
        if (self.image is None) == (self.images is None):
            raise _bad("give exactly one of 'image' (one image) or 'images' (a list)", "image")
        _limit(self.images or (), "images", clip.max_images, "clip.max_images")
        _texts(self.prompts, "prompts", clip, distinct=True)
        if self.negative_prompts is not None:
            _texts(self.negative_prompts, "negative_prompts", clip)
        if self.multi_label and not self.negatives(clip):
            raise _bad("'multi_label' needs at least one negative prompt", "negative_prompts")
        _limit(self.regions or (), "regions", clip.max_regions, "clip.max_regions")
        for index, (x0, y0, x1, y1) in enumerate(self.boxes):
            if x1 <= x0 or y1 <= y0:
                raise _bad(
                    f"the region {[x0, y0, x1, y1]} is empty: x1 must exceed x0 and y1 must exceed y0",
                    f"regions[{index}]",
                )
        if self.regions and self.image is None:
            raise _bad("'regions' are crops of one image: send it as 'image', not 'images'", "regions")
        return self

    @property
    def single(self) -> bool:
        """Sent as `image`: answered in the single-image shape."""
        return self.image is not None

    @property
    def refs(self) -> tuple[ImageRef, ...]:
        if self.image is not None:
            return (image_ref(self.image, "image"),)
        return _refs(self.images or (), "images")

    @functools.cached_property
    def boxes(self) -> tuple[Region, ...]:
        """The regions in whole pixels; () = the whole image."""
        return tuple((round(a), round(b), round(c), round(d)) for a, b, c, d in self.regions or ())

    def negatives(self, clip: ClipConfig) -> tuple[str, ...]:
        """The prompts each label competes with under multi_label: the request's, else clip's."""
        return clip.negative_prompts if self.negative_prompts is None else tuple(self.negative_prompts)


@dataclass(frozen=True)
class EmbeddingsRequest:
    """Any embedding endpoint's request: inputs in order, each a text or an image."""

    model: str | None
    inputs: tuple[str | ImageRef, ...]
    encoding_format: EncodingFormat
    ensemble: bool

    @property
    def texts(self) -> list[str]:
        return [item for item in self.inputs if isinstance(item, str)]

    @property
    def images(self) -> list[ImageRef]:
        return [item for item in self.inputs if isinstance(item, ImageRef)]


def embedding_inputs(
    values: Sequence[tuple[str | ImageURL | ImagePartObject, str]],
) -> tuple[str | ImageRef, ...]:
    """Each (value, param): strings that are data: URLs are images, other strings texts; objects images."""
    return tuple(
        (ImageRef(v, param) if v[:5].lower() == "data:" else v) if isinstance(v, str) else image_ref(v, param)
        for v, param in values
    )


def check_embedding_inputs(
    inputs: Sequence[str | ImageRef], params: Sequence[str], key: str, clip: ClipConfig
) -> None:
    """The texts' and images' clip.* limits, and each text's length (`params[i]` names input i)."""
    texts = [(text, param) for text, param in zip(inputs, params, strict=True) if isinstance(text, str)]
    if len(texts) > clip.max_prompts:
        raise _bad(f"at most {clip.max_prompts} texts per request (clip.max_prompts)", key)
    if len(inputs) - len(texts) > clip.max_images:
        raise _bad(f"at most {clip.max_images} images per request (clip.max_images)", key)
    for text, param in texts:
        if len(text) > clip.max_prompt_chars:
            raise _bad(
                f"a text may have at most {clip.max_prompt_chars} characters (clip.max_prompt_chars), "
                f"this one has {len(text)}",
                param,
            )


EmbeddingInput = Annotated[
    Annotated[NonBlank, Tag("~string")]
    | Annotated[ImageURL, Tag("~object")]
    | Annotated[ImagePartObject, Tag("~part")],
    tag_by(
        image_input_tag,
        "must be a text, a data: URL image or an image object; token arrays are not supported",
    ),
]
EmbeddingInputs = Annotated[
    Annotated[NonBlank, Tag("~string")] | Annotated[list[EmbeddingInput], Field(min_length=1), Tag("~array")],
    tag_by(json_kind, "must be a string or a non-empty list of texts and images"),
]


class OpenAIEmbeddingsRequest(Body):
    """/v1/embeddings: OpenAI's body; `input` mixes texts (strings) and images (data URLs, objects)."""

    input: EmbeddingInputs
    model: str | None = None
    encoding_format: EncodingFormat | None = None
    dimensions: None = Field(None, description="Not supported: embeddings have the model's own size")
    user: str | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> OpenAIEmbeddingsRequest:
        params = [param for _, param in self._values]
        check_embedding_inputs(self.request.inputs, params, "input", limits(info).clip)
        return self

    @property
    def _values(self) -> list[tuple[str | ImageURL | ImagePartObject, str]]:
        if isinstance(self.input, str):
            return [(self.input, "input")]
        return [(v, f"input[{i}]") for i, v in enumerate(self.input)]

    @property
    def request(self) -> EmbeddingsRequest:
        inputs = embedding_inputs(self._values)
        return EmbeddingsRequest(self.model, inputs, self.encoding_format or "float", False)


class ImageEmbeddingsRequest(Body):
    """/v1/embeddings/image: `{"images": [...]}`."""

    images: Images
    model: str | None = None
    encoding_format: EncodingFormat | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ImageEmbeddingsRequest:
        _limit(self.images, "images", limits(info).clip.max_images, "clip.max_images")
        return self

    @property
    def request(self) -> EmbeddingsRequest:
        return EmbeddingsRequest(
            self.model, _refs(self.images, "images"), self.encoding_format or "float", False
        )


class TextEmbeddingsRequest(Body):
    """/v1/embeddings/text: `{"texts": [...], "ensemble"?}`."""

    texts: Texts
    ensemble: bool | None = None
    model: str | None = None
    encoding_format: EncodingFormat | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> TextEmbeddingsRequest:
        _texts(self.texts, "texts", limits(info).clip)
        return self

    @property
    def request(self) -> EmbeddingsRequest:
        return EmbeddingsRequest(
            self.model, tuple(self.texts), self.encoding_format or "float", bool(self.ensemble)
        )


class MatchRequest(Body):
    """/v1/match: every image against every text."""

    images: Images
    texts: Texts
    ensemble: bool | None = None
    probabilities: bool | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> MatchRequest:
        clip = limits(info).clip
        _limit(self.images, "images", clip.max_images, "clip.max_images")
        _texts(self.texts, "texts", clip)
        return self

    @property
    def request(self) -> EmbeddingsRequest:
        refs = _refs(self.images, "images")
        return EmbeddingsRequest(self.model, (*refs, *self.texts), "float", bool(self.ensemble))
