"""Validate the bodies of the CLIP endpoints (/v1/classify, /v1/embeddings*, /v1/match), without any I/O.

Pure policy, in the style of chat_request: every field of the wrong type or range, and every list
beyond its `clip.*` limit, becomes a 400 naming the field in `param`; unknown fields are ignored.
Images stay references here; decoding them is the image intake's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from api.chat_request import ImageRef
from api.errors import APIError
from npu_worker.config import ClipConfig

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive
EncodingFormat = Literal["float", "base64"]


@dataclass(frozen=True)
class ClassifyRequest:
    model: str | None
    images: tuple[ImageRef, ...]
    single: bool  # sent as "image": answered in the single-image shape
    prompts: tuple[str, ...]
    threshold: float
    top_k: int | None
    ensemble: bool
    multi_label: bool
    negative_prompts: tuple[str, ...]  # used only with multi_label
    regions: tuple[Region, ...]  # () = the whole image


@dataclass(frozen=True)
class EmbeddingsRequest:
    """Any of the embedding endpoints: inputs in order, each a text or an image."""

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


@dataclass(frozen=True)
class MatchRequest:
    model: str | None
    images: tuple[ImageRef, ...]
    texts: tuple[str, ...]
    ensemble: bool
    probabilities: bool


def _bad(message: str, param: str) -> APIError:
    return APIError(400, message, "invalid_request", param)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", "body")
    return body


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string", "model")
    return model or None


def _flag(body: dict[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"'{key}' must be a boolean, got {type(value).__name__}", key)
    return value


def _list(body: dict[str, Any], key: str, limit: int, limit_name: str) -> list[Any]:
    """A non-empty list of at most `limit` items (`limit_name` is the config key, for the message)."""
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise _bad(f"'{key}' must be a non-empty list", key)
    if len(value) > limit:
        raise _bad(f"'{key}' holds {len(value)} items; the limit is {limit} ({limit_name})", key)
    return value


def _text(value: Any, param: str, clip: ClipConfig) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad("each text must be a non-empty string", param)
    if len(value) > clip.max_prompt_chars:
        raise _bad(
            f"a text may have at most {clip.max_prompt_chars} characters (clip.max_prompt_chars), "
            f"this one has {len(value)}",
            param,
        )
    return value


def _texts(body: dict[str, Any], key: str, clip: ClipConfig, distinct: bool = False) -> tuple[str, ...]:
    values = _list(body, key, clip.max_prompts, "clip.max_prompts")
    texts = tuple(_text(v, f"{key}[{i}]", clip) for i, v in enumerate(values))
    if distinct and len(set(texts)) != len(texts):
        first = next(i for i, t in enumerate(texts) if texts.index(t) != i)
        raise _bad(f"'{key}' must not repeat a text; {texts[first]!r} appears twice", f"{key}[{first}]")
    return texts


def image_ref(value: Any, param: str) -> ImageRef:
    """An image given as a URL string, {"url": ...} or an OpenAI image part {"image_url": ...}."""
    where = param
    if isinstance(value, dict):
        if "image_url" in value:
            value, where = value["image_url"], f"{param}.image_url"
            if isinstance(value, dict):
                value, where = value.get("url"), f"{where}.url"
        else:
            value, where = value.get("url"), f"{param}.url"
    if not isinstance(value, str) or not value.strip():
        raise _bad(
            "an image must be a data URL, base64 or URL string, {'url': ...} or "
            "{'type': 'image_url', 'image_url': {'url': ...}}",
            where,
        )
    return ImageRef(value.strip(), where)


def _images(body: dict[str, Any], key: str, clip: ClipConfig) -> tuple[ImageRef, ...]:
    values = _list(body, key, clip.max_images, "clip.max_images")
    return tuple(image_ref(v, f"{key}[{i}]") for i, v in enumerate(values))


def _encoding_format(body: dict[str, Any]) -> EncodingFormat:
    value = body.get("encoding_format")
    if value is None or value == "float":
        return "float"
    if value == "base64":
        return "base64"
    raise _bad(f"'encoding_format' must be 'float' or 'base64', got {value!r}", "encoding_format")


def _number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"'{param}' must be a number", param)
    return float(value)


def _regions(body: dict[str, Any], clip: ClipConfig) -> tuple[Region, ...]:
    if body.get("regions") is None:
        return ()
    boxes = _list(body, "regions", clip.max_regions, "clip.max_regions")
    regions: list[Region] = []
    for index, box in enumerate(boxes):
        where = f"regions[{index}]"
        if not isinstance(box, list) or len(box) != 4:
            raise _bad("a region must be [x0, y0, x1, y1] in pixels", where)
        x0, y0, x1, y1 = (round(_number(v, f"{where}[{i}]")) for i, v in enumerate(box))
        if x1 <= x0 or y1 <= y0:
            raise _bad(f"the region {box} is empty: x1 must exceed x0 and y1 must exceed y0", where)
        regions.append((x0, y0, x1, y1))
    return tuple(regions)


def check_regions(regions: tuple[Region, ...], width: int, height: int) -> None:
    """Every region lies inside the decoded (EXIF-oriented) image of `width` x `height` pixels."""
    for index, (x0, y0, x1, y1) in enumerate(regions):
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise _bad(
                f"the region [{x0}, {y0}, {x1}, {y1}] is outside the {width}x{height} image",
                f"regions[{index}]",
            )


def _threshold(body: dict[str, Any]) -> float:
    value = body.get("threshold")
    if value is None:
        return 0.0
    threshold = _number(value, "threshold")
    if not 0.0 <= threshold <= 1.0:
        raise _bad(f"'threshold' must be between 0 and 1, got {value}", "threshold")
    return threshold


def _top_k(body: dict[str, Any]) -> int | None:
    value = body.get("top_k")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"'top_k' must be an integer of at least 1, got {value!r}", "top_k")
    return value


def parse_classify_request(body: Any, clip: ClipConfig) -> ClassifyRequest:
    """The typed /v1/classify request, or APIError(400) naming the first bad field."""
    body = _object(body)
    model = _model(body)
    if ("image" in body) == ("images" in body):
        raise _bad("give exactly one of 'image' (one image) or 'images' (a list)", "image")
    single = "image" in body
    images = (image_ref(body["image"], "image"),) if single else _images(body, "images", clip)
    prompts = _texts(body, "prompts", clip, distinct=True)
    multi_label = _flag(body, "multi_label")
    negatives = clip.negative_prompts
    if body.get("negative_prompts") is not None:
        negatives = _texts(body, "negative_prompts", clip)
    if multi_label and not negatives:
        raise _bad("'multi_label' needs at least one negative prompt", "negative_prompts")
    regions = _regions(body, clip)
    if regions and not single:
        raise _bad("'regions' are crops of one image: send it as 'image', not 'images'", "regions")
    return ClassifyRequest(
        model=model,
        images=images,
        single=single,
        prompts=prompts,
        threshold=_threshold(body),
        top_k=_top_k(body),
        ensemble=_flag(body, "ensemble"),
        multi_label=multi_label,
        negative_prompts=negatives if multi_label else (),
        regions=regions,
    )


def _embedding_input(value: Any, param: str, clip: ClipConfig) -> str | ImageRef:
    """A string that is a data: URL is an image, any other string is text; objects are image parts."""
    if isinstance(value, str) and value[:5].lower() == "data:":
        return ImageRef(value, param)
    if isinstance(value, dict):
        return image_ref(value, param)
    if isinstance(value, list) or (isinstance(value, int) and not isinstance(value, bool)):
        raise _bad("token arrays are not supported; send text as strings", param)
    return _text(value, param, clip)


def parse_embeddings_request(body: Any, clip: ClipConfig) -> EmbeddingsRequest:
    """OpenAI's /v1/embeddings body: `input` is a string or a list mixing texts and images."""
    body = _object(body)
    if body.get("dimensions") is not None:
        raise _bad("'dimensions' is not supported: embeddings have the model's own size", "dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("'user' must be a string", "user")
    raw = body.get("input")
    if isinstance(raw, str):
        inputs: tuple[str | ImageRef, ...] = (_embedding_input(raw, "input", clip),)
    else:
        values = _list(
            body, "input", clip.max_prompts + clip.max_images, "clip.max_prompts + clip.max_images"
        )
        inputs = tuple(_embedding_input(v, f"input[{i}]", clip) for i, v in enumerate(values))
    request = EmbeddingsRequest(_model(body), inputs, _encoding_format(body), ensemble=False)
    if len(request.texts) > clip.max_prompts:
        raise _bad(f"at most {clip.max_prompts} texts per request (clip.max_prompts)", "input")
    if len(request.images) > clip.max_images:
        raise _bad(f"at most {clip.max_images} images per request (clip.max_images)", "input")
    return request


def parse_image_embeddings_request(body: Any, clip: ClipConfig) -> EmbeddingsRequest:
    """/v1/embeddings/image: {"images": [...], "model"?, "encoding_format"?}."""
    body = _object(body)
    return EmbeddingsRequest(_model(body), _images(body, "images", clip), _encoding_format(body), False)


def parse_text_embeddings_request(body: Any, clip: ClipConfig) -> EmbeddingsRequest:
    """/v1/embeddings/text: {"texts": [...], "ensemble"?, "model"?, "encoding_format"?}."""
    body = _object(body)
    texts = _texts(body, "texts", clip)
    return EmbeddingsRequest(_model(body), texts, _encoding_format(body), _flag(body, "ensemble"))


def parse_match_request(body: Any, clip: ClipConfig) -> MatchRequest:
    """/v1/match: {"images": [...], "texts": [...], "ensemble"?, "probabilities"?, "model"?}."""
    body = _object(body)
    return MatchRequest(
        model=_model(body),
        images=_images(body, "images", clip),
        texts=_texts(body, "texts", clip),
        ensemble=_flag(body, "ensemble"),
        probabilities=_flag(body, "probabilities"),
    )
