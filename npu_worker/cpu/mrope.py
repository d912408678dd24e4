"""Qwen2-VL's 3-D rotary positions (M-RoPE) for a prompt of text, image and clip tokens.

Same rule as transformers' get_rope_index (5.x): text tokens advance all three axes (temporal, height,
width) by one; an image's or a clip's tokens take their (t, h, w) place in the merged patch grid, all
three axes offset by the running position (a clip's temporal axis counts its temporal patches); text
after either starts at the running position + max(h, w) of that grid. (Qwen's original code, and
transformers 4, advanced by max(t, h, w); transformers 5 ignores t, and the golden fixtures follow
the pinned transformers.) Generated tokens then sit at past_len + delta on all three axes, where
delta = largest prompt position + 1 - prompt length.
"""

from __future__ import annotations

import numpy as np

NO_TOKEN = -1


def rope_index(
    input_ids: np.ndarray,
    image_grids: np.ndarray,
    image_token_id: int,
    merge_size: int,
    video_grids: np.ndarray | None = None,
    video_token_id: int = NO_TOKEN,
) -> tuple[np.ndarray, int]:
    """position_ids int64[3, len(input_ids)] and the rope delta for the decode steps.

    Each maximal run of image_token_id (video_token_id) is filled by the next images' (clips') grids,
    t*h*w/merge_size**2 tokens each, so two inputs with no text between them are still placed one after
    the other.
    """
    ids = np.asarray(input_ids)
    positions = np.empty((3, ids.size), dtype=np.int64)
    grids = {
        image_token_id: iter(np.asarray(image_grids, dtype=np.int64).reshape(-1, 3).tolist()),
        video_token_id: iter(
            np.asarray(video_grids if video_grids is not None else (), np.int64).reshape(-1, 3).tolist()
        ),
    }
    vision_at = np.flatnonzero((ids == image_token_id) | (ids == video_token_id))
    start, current = 0, 0
    cursor = 0  # index into vision_at
    while start < ids.size:
        end = int(vision_at[cursor]) if cursor < vision_at.size else ids.size
        if end > start:  # a text stretch
            positions[:, start:end] = np.arange(current, current + end - start)
            current += end - start
            start = end
            continue
        t, h, w = next(grids[int(ids[start])])
        h, w = h // merge_size, w // merge_size
        block = _grid_positions(t, h, w) + current
        positions[:, start : start + block.shape[1]] = block
        current += max(h, w)
        start += block.shape[1]
        cursor += block.shape[1]
    delta = int(positions.max()) + 1 - ids.size if ids.size else 0
    return positions, delta


def _grid_positions(t: int, h: int, w: int) -> np.ndarray:
    """The (t, h, w) grid coordinates of one input's tokens in row-major order, int64[3, t*h*w]."""
    grid_t, grid_h, grid_w = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([grid_t.ravel(), grid_h.ravel(), grid_w.ravel()]).astype(np.int64)


def decode_positions(past_len: int, delta: int) -> np.ndarray:
    """position_ids int64[3, 1, 1] for the token generated after past_len tokens."""
    return np.full((3, 1, 1), past_len + delta, dtype=np.int64)
