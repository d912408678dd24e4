"""Qwen2-VL's 3-D rotary positions (M-RoPE) for a prompt of text and image tokens.

Same rule as transformers' get_rope_index: text tokens advance all three axes (temporal, height,
width) by one; an image's tokens take their (t, h, w) place in the merged patch grid, offset by the
running position; text after an image starts at the image's largest position + 1. Generated tokens
then sit at past_len + delta on all three axes, where delta = largest prompt position + 1 - prompt length.
"""

from __future__ import annotations

import numpy as np


def rope_index(
    input_ids: np.ndarray, image_grids: np.ndarray, image_token_id: int, merge_size: int
) -> tuple[np.ndarray, int]:
    """position_ids int64[3, len(input_ids)] and the rope delta for the decode steps.

    Each maximal run of image_token_id is filled by the next images' grids (t*h*w/merge_size**2
    tokens each), so two images with no text between them are still placed one after the other.
    """
    ids = np.asarray(input_ids)
    positions = np.empty((3, ids.size), dtype=np.int64)
    grids = iter(np.asarray(image_grids, dtype=np.int64).reshape(-1, 3).tolist())
    image_at = np.flatnonzero(ids == image_token_id)
    start, current = 0, 0
    cursor = 0  # index into image_at
    while start < ids.size:
        end = int(image_at[cursor]) if cursor < image_at.size else ids.size
        if end > start:  # a text stretch
            positions[:, start:end] = np.arange(current, current + end - start)
            current += end - start
            start = end
            continue
        t, h, w = next(grids)
        h, w = h // merge_size, w // merge_size
        block = _image_positions(t, h, w) + current
        positions[:, start : start + block.shape[1]] = block
        current += max(h, w)  # transformers 5: images have t == 1
        start += block.shape[1]
        cursor += block.shape[1]
    delta = int(positions.max()) + 1 - ids.size if ids.size else 0
    return positions, delta


def _image_positions(t: int, h: int, w: int) -> np.ndarray:
    """The (t, h, w) grid coordinates of one image's tokens in row-major order, int64[3, t*h*w]."""
    grid_t, grid_h, grid_w = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([grid_t.ravel(), grid_h.ravel(), grid_w.ravel()]).astype(np.int64)


def decode_positions(past_len: int, delta: int) -> np.ndarray:
    """position_ids int64[3, 1, 1] for the token generated after past_len tokens."""
    return np.full((3, 1, 1), past_len + delta, dtype=np.int64)
