"""Decode an uploaded image file into the RGB uint8 array the NPU worker is sent.

Runs in the API's thread pool, so it is synchronous and touches no shared state. The file's type is
found from its content (the declared MIME type is never trusted); only common photo and web formats
are decoded. Sizes are checked from the header before any pixel is decoded, so a decompression bomb
costs nothing, and a JPEG is decoded straight at the smallest DCT scale (1/2, 1/4, 1/8) that still
gives the model the pixels it needs: a 12 MP photo for a 1 MP model is never decoded in full.
"""

from __future__ import annotations

import codecs
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from api.errors import APIError
from npu_worker.images import as_rgb_array, to_rgb_image

# Pillow's format names -> the name used in messages; MPO is the multi-picture JPEG many cameras write.
_ACCEPTED: dict[str, str] = {
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
}
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WebP", "GIF", "BMP")
_DRAFT_SCALES = (8, 4, 2, 1)  # the DCT scalings libjpeg offers, largest reduction first
# A reduction after decoding keeps this many times the model's pixels (and short side), so the
# model's own resize, which is the accurate one, still has real detail to work from.
_REDUCE_SLACK = 2
# Files this small (bytes and header pixels) are decoded on the event loop: the decode takes less time
# than the hop to a worker thread and back.
SMALL_IMAGE_BYTES = 64 * 1024
SMALL_IMAGE_PIXELS = 256 * 256

# Magic numbers of files Pillow cannot open at all, so that refusals name what was sent.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF8", 0, "GIF"),
    (b"WEBP", 8, "WebP"),
    (b"BM", 0, "BMP"),
    (b"%PDF", 0, "PDF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
)


@dataclass(frozen=True)
class ImageLimits:
    """What the API accepts (config `api.max_image_bytes` and `api.max_image_pixels`)."""

    max_bytes: int = 20 * 1024 * 1024
    # width x height in the file's header. Pillow's own guard refuses over 2 x Image.MAX_IMAGE_PIXELS
    # (178,956,970 by default) whatever this says.
    max_source_pixels: int = 50_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What a file is, read from its header only: for logs and error messages, never the bytes."""

    format: str
    width: int
    height: int
    byte_size: int


def image_too_large(max_bytes: int, param: str | None) -> APIError:
    """The 413 for an image file (inline or fetched) bigger than `max_bytes`."""
    limit = f"{max_bytes / 2**20:.3g} MiB ({max_bytes} bytes)" if max_bytes >= 2**20 else f"{max_bytes} bytes"
    return APIError(413, f"The image is larger than the limit of {limit}.", "image_too_large", param)


def image_info(data: bytes, limits: ImageLimits, param: str | None = None) -> ImageInfo:
    """The format and size of an accepted image file; raises the same errors as `decode_image`."""
    with open_image(data, limits, param) as image:
        return ImageInfo(_ACCEPTED[str(image.format)], image.width, image.height, len(data))


def decode_image(
    data: bytes,
    limits: ImageLimits,
    target_pixels: int | None = None,
    *,
    min_side: int = 0,
    param: str | None = None,
) -> np.ndarray:
    """A C-contiguous (height, width, 3) uint8 RGB array of the image file `data`.

    EXIF orientation is applied and transparency is flattened onto white. With `target_pixels`,
    the result may be smaller than the file but keeps at least `target_pixels` pixels and a short
    side of at least `min_side` (e.g. CLIP's shortest-edge size); images already smaller are never
    enlarged. Without it the image is decoded at full size. `param` names the request field in errors.

    Raises APIError: 413 `image_too_large` (bytes or header pixels over `limits`), 415
    `unsupported_image_type`, 400 `invalid_image` (truncated or corrupt file).
    """
    image = open_image(data, limits, param)
    return decode_opened(image, limits, target_pixels, min_side=min_side, param=param)


def is_small(image: Image.Image, byte_size: int) -> bool:
    """Whether decoding costs less than handing the work to a thread (well under a millisecond)."""
    return byte_size <= SMALL_IMAGE_BYTES and image.width * image.height <= SMALL_IMAGE_PIXELS


def decode_opened(
    opened: Image.Image,
    limits: ImageLimits,
    target_pixels: int | None = None,
    *,
    min_side: int = 0,
    param: str | None = None,
) -> np.ndarray:
    """`decode_image` for a file `open_image` has read the header of; the image is closed after."""
    with opened as image:
        try:
            if target_pixels is not None and image.format in ("JPEG", "MPO"):
                scale = _largest_scale(image.size, _DRAFT_SCALES, target_pixels, min_side)
                if scale > 1:
                    image.draft("RGB", (max(1, image.width // scale), max(1, image.height // scale)))
            image.load()  # every decoding error surfaces here, inside the try
            ImageOps.exif_transpose(image, in_place=True)
            rgb = to_rgb_image(image)
            if target_pixels is not None:
                keep = max(1, _REDUCE_SLACK * target_pixels)
                largest = min(*rgb.size, math.isqrt(rgb.width * rgb.height // keep) + 2)
                factor = _largest_scale(rgb.size, range(largest, 1, -1), keep, _REDUCE_SLACK * min_side)
                if factor > 1:
                    rgb = rgb.reduce(factor)
            return as_rgb_array(rgb)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb(limits, param) from None
        except MemoryError:  # the server's problem, not the file's
            raise
        except Exception as error:  # Pillow raises many types for broken files; all mean "corrupt"
            name = _ACCEPTED[str(image.format)]
            raise APIError(
                400,
                f"The {name} image could not be decoded: it is truncated or corrupt ({error}).",
                "invalid_image",
                param,
            ) from None


def _largest_scale(size: tuple[int, int], scales: Sequence[int], pixels: int, min_side: int) -> int:
    """The first of `scales` whose ceil-divided size keeps `pixels` pixels and a `min_side` short side."""
    for scale in scales:
        width, height = -(-size[0] // scale), -(-size[1] // scale)
        if width * height >= pixels and min(width, height) >= min_side:
            return scale
    return 1


def open_image(data: bytes, limits: ImageLimits, param: str | None = None) -> Image.Image:
    """The image file opened from its header only, once size, format and pixel count are acceptable.

    Raises the same APIErrors as `decode_image` for what the header shows.
    """
    if len(data) > limits.max_bytes:
        raise image_too_large(limits.max_bytes, param)
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(limits, param) from None
    except UnidentifiedImageError:
        raise _unidentified(data, param) from None
    except Exception as error:  # a header broken in a way the format's plugin did not expect
        name = _sniff(data) or "image"
        raise APIError(400, f"The {name} header is corrupt ({error}).", "invalid_image", param) from None
    if image.format not in _ACCEPTED:
        image.close()
        raise _unsupported(str(image.format), param)
    if image.width * image.height > limits.max_source_pixels:
        image.close()
        raise _too_many_pixels(image.size, limits, param)
    return image


def _too_many_pixels(size: tuple[int, int], limits: ImageLimits, param: str | None) -> APIError:
    return APIError(
        413,
        f"The image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, more than the limit of "
        f"{limits.max_source_pixels} pixels.",
        "image_too_large",
        param,
    )


def _bomb(limits: ImageLimits, param: str | None) -> APIError:
    """Pillow's own decompression-bomb guard, which fires before ours can, as our 413."""
    return APIError(
        413,
        f"The image has more pixels than the limit of {limits.max_source_pixels} pixels.",
        "image_too_large",
        param,
    )


def _unsupported(detected: str, param: str | None) -> APIError:
    return APIError(
        415,
        f"Unsupported image type {detected}; accepted types are {', '.join(ACCEPTED_FORMATS)}.",
        "unsupported_image_type",
        param,
    )


def _unidentified(data: bytes, param: str | None) -> APIError:
    """415 naming what a file Pillow cannot open looks like, or 400 when it looks like nothing."""
    name = _sniff(data)
    if name in ACCEPTED_FORMATS:
        message = f"The {name} image could not be decoded: it is truncated or corrupt."
        return APIError(400, message, "invalid_image", param)
    if name is not None:
        return _unsupported(name, param)
    head = data[:4096]
    if head and b"\0" not in head:
        try:  # an incremental decoder forgives a character cut at the end of `head`
            text = codecs.getincrementaldecoder("utf-8")().decode(head)
        except UnicodeDecodeError:
            pass
        else:
            return _unsupported("SVG" if "<svg" in text.lower() else "text", param)
    return APIError(
        400,
        f"The data is not a recognisable image file; accepted types are {', '.join(ACCEPTED_FORMATS)}.",
        "invalid_image",
        param,
    )


def _sniff(data: bytes) -> str | None:
    """The type a file's magic number claims, for the formats in `_SIGNATURES`."""
    for signature, offset, name in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return name
    return None
