"""A short digest of an image's or clip's pixels: how a kept model context tells the same picture again.

Context reuse (CPU KV caches, the Hailo VLM's device context) must never continue a conversation
about other pixels, so each backend keys what it keeps by these digests, not by the request's text.
"""

from __future__ import annotations

import hashlib

import numpy as np


def pixel_digest(arrays: tuple[np.ndarray, ...]) -> bytes:
    """16 bytes over the shapes and pixels of one image (one array) or one clip's frames, in order."""
    hasher = hashlib.blake2b(digest_size=16)
    for array in arrays:
        hasher.update(repr(array.shape).encode())
        hasher.update(np.ascontiguousarray(array).data)
    return hasher.digest()
