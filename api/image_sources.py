"""Turn the image reference in a request into the bytes of the image file.

Clients send images as data URLs (OpenAI's form), as bare base64 (Ollama's form, standard or
URL-safe alphabet, padded or not, wrapped or not) or, when the server allows it, as http(s) URLs.
Only the transport is undone here; what the bytes are is found later from their content
(`image_intake`), so a declared MIME type is ignored. The size limit is enforced before anything
large is decoded or downloaded.
"""

from __future__ import annotations

import asyncio
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from api.errors import APIError
from api.image_fetch import fetch_image
from api.image_intake import image_too_large

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_WHITESPACE = b" \t\n\r\v\f"
# Inline data longer than this is decoded in a thread, _PIECE characters at a time (a multiple of 4):
# megabytes of base64 take a few hundred ms on a Pi, which must not stall other requests' streams.
_PIECE = 256 * 1024
_REMOTE_SCHEMES = ("http", "https")
_INLINE_FORMS = "a data: URL (data:image/jpeg;base64,...) or bare base64"


@dataclass(frozen=True)
class ImageSourcePolicy:
    """Where images may come from (config `api.max_image_bytes`, `api.allow_remote_images`, ...)."""

    max_bytes: int = 20 * 1024 * 1024
    allow_remote: bool = False
    fetch_timeout_s: float = 10.0
    max_redirects: int = 3


async def read_image_reference(ref: object, param: str, policy: ImageSourcePolicy) -> bytes:
    """The image file named by `ref`: a data URL, bare base64 or (if allowed) an http(s) URL.

    `param` is the request field holding `ref` (e.g. "messages[0].content[1].image_url"); every
    error names it. Large inline data is decoded in a thread and remote images are fetched on asyncio
    streams, so the event loop is never blocked for long.

    Raises APIError: 400 `invalid_image_url` (empty, unknown scheme, malformed data URL or base64),
    400 `remote_images_disabled`, 400 `image_fetch_failed`, 400 `image_fetch_timeout`, 413
    `image_too_large`.
    """
    if not isinstance(ref, str):
        raise _invalid(f"must be a string holding {_INLINE_FORMS}, not {type(ref).__name__}", param)
    text = ref.strip()
    scheme = _SCHEME.match(text)
    if scheme is not None and scheme.group(1).lower() in _REMOTE_SCHEMES:
        if not policy.allow_remote:
            raise APIError(
                400,
                f"Remote image URLs are disabled on this server; send the image inline as {_INLINE_FORMS}, "
                "or set api.allow_remote_images: true in the server's config.",
                "remote_images_disabled",
                param,
            )
        return await fetch_image(
            text,
            param=param,
            max_bytes=policy.max_bytes,
            timeout_s=policy.fetch_timeout_s,
            max_redirects=policy.max_redirects,
        )
    if len(text) > _PIECE:
        return await asyncio.to_thread(decode_inline_image, text, param, policy.max_bytes)
    return decode_inline_image(text, param, policy.max_bytes)


def decode_inline_image(text: str, param: str, max_bytes: int) -> bytes:
    """The bytes of a data URL or bare base64 string; anything else is a 400 naming `param`."""
    if not text:
        raise _invalid(f"is empty; expected {_INLINE_FORMS}", param)
    scheme = _SCHEME.match(text)
    if scheme is None:
        return _decode_base64(text, param, max_bytes)
    name = scheme.group(1).lower()
    if name != "data":
        raise _invalid(f"uses the unsupported scheme {name!r}; expected {_INLINE_FORMS}", param)
    header, comma, payload = text[len("data:") :].partition(",")
    if not comma:
        raise _invalid("is a data: URL without the ',' before its data", param)
    # The media type is ignored on purpose: the file's content decides what it is.
    if any(part.strip().lower() == "base64" for part in header.split(";")[1:]):
        # Some clients percent-encode the base64 alphabet's '+', '/' and '='.
        return _decode_base64(unquote(payload) if "%" in payload else payload, param, max_bytes)
    if len(payload) > 3 * max_bytes:  # percent-encoding never makes data more than 3x longer
        raise image_too_large(max_bytes, param)
    data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise image_too_large(max_bytes, param)
    if not data:
        raise _invalid("is a data: URL with no data", param)
    return data


def _decode_base64(text: str, param: str, max_bytes: int) -> bytes:
    """Standard or URL-safe base64, with or without padding, whitespace and line breaks allowed."""
    if len(text) > 2 * _encoded_length(max_bytes):  # refuse before even copying: no real line
        raise image_too_large(max_bytes, param)  # wrapping doubles the length
    # Piece by piece, so that a thread doing this lets the event loop run between pieces.
    pieces = range(0, len(text), _PIECE)
    try:
        compact = b"".join(
            text[i : i + _PIECE].encode("ascii").translate(_URLSAFE_TO_STANDARD, _WHITESPACE) for i in pieces
        ).rstrip(b"=")
    except UnicodeEncodeError:
        raise _invalid(f"is not valid base64; expected {_INLINE_FORMS}", param) from None
    if len(compact) * 3 // 4 > max_bytes:  # the exact decoded size, known before decoding
        raise image_too_large(max_bytes, param)
    if not compact or len(compact) % 4 == 1 or b"=" in compact:
        raise _invalid(f"is not valid base64; expected {_INLINE_FORMS}", param)
    padded = memoryview(compact + b"=" * (-len(compact) % 4))
    try:  # _PIECE is a multiple of 4, so every piece is whole base64 quanta
        return b"".join(
            binascii.a2b_base64(padded[i : i + _PIECE], strict_mode=True)
            for i in range(0, len(padded), _PIECE)
        )
    except binascii.Error:
        raise _invalid(f"is not valid base64; expected {_INLINE_FORMS}", param) from None


def _encoded_length(size: int) -> int:
    return 4 * -(-size // 3)


def _invalid(problem: str, param: str) -> APIError:
    return APIError(400, f"The image reference {problem}.", "invalid_image_url", param)
