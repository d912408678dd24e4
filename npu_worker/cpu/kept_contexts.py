"""Conversations' KV caches, kept for their follow-up turns (the CPU backend's context reuse).

A follow-up request repeats the whole conversation (same messages, same images and clips) and adds
turns; prefilling all of it again would redo what the last generation computed. After a generation
the runner keeps its KV cache with the tokens it covers (the prompt and the answer tokens fed back)
and the digest of every image and clip. A new prompt that repeats a kept conversation's whole prompt
with the same media takes that cache, cut to the longest common prefix of the tokens (an answer
re-tokenized from its text may split differently from the generated ids) and never inside an image
or clip, and prefills only the rest. That is exact: a causal decoder's keys and values at position i
depend on tokens 0..i only. Any other prompt starts clean, even one that shares a system prompt.

Bounded by entries and bytes (oldest dropped first); an entry leaves the store when a prompt takes
it, so two requests never share one cache.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from npu_worker.cpu.qwen2vl_prompt import PromptTokens
from npu_worker.pixel_digest import pixel_digest


@dataclass(frozen=True)
class Medium:
    """An image's or a clip's run of pad tokens in a prompt, and what it shows."""

    start: int
    end: int
    digest: bytes


@dataclass(frozen=True, eq=False)  # compared by identity: its arrays have no equality
class KeptContext:
    ids: np.ndarray  # int64[n]: the tokens the cache covers
    prompt_len: int  # the request's prompt: what a follow-up must repeat exactly
    media: tuple[Medium, ...]
    cache: list[np.ndarray]  # present key/values per layer, [1, heads, n, dim]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.cache)


def media_of(
    prompt: PromptTokens, image_token_id: int, video_token_id: int, merge_size: int
) -> tuple[Medium, ...]:
    """Every image and clip of the prompt, in prompt order, with its token run."""
    tokens = {
        image_token_id: iter(zip(prompt.image_grids.prod(axis=1).tolist(), prompt.images, strict=True)),
        video_token_id: iter(zip(prompt.video_grids.prod(axis=1).tolist(), prompt.clips, strict=True)),
    }
    ids = prompt.input_ids
    media: list[Medium] = []
    at = np.flatnonzero((ids == image_token_id) | (ids == video_token_id))
    index = 0
    while index < at.size:
        start = int(at[index])
        patches, pixels = next(tokens[int(ids[start])])
        length = patches // merge_size**2
        frames = pixels if isinstance(pixels, tuple) else (pixels,)
        media.append(Medium(start, start + length, pixel_digest(frames)))
        index += length
    return tuple(media)


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.size, b.size)
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


class ContextStore:
    def __init__(self, entries: int, max_bytes: int) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._kept: collections.deque[KeptContext] = collections.deque()

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()

    def take(self, ids: np.ndarray, media: tuple[Medium, ...]) -> tuple[list[np.ndarray], int] | None:
        """The cache of a kept conversation that `ids` continue, cut to the tokens they share, and how
        many tokens it covers (at least one token of `ids` is always left to prefill); or None."""
        for kept in reversed(self._kept):
            shared = self._shared(kept, ids, media)
            if shared:
                self._kept.remove(kept)
                cache = [
                    a if a.shape[2] == shared else np.ascontiguousarray(a[:, :, :shared]) for a in kept.cache
                ]
                return cache, shared
        return None

    @staticmethod
    def _shared(kept: KeptContext, ids: np.ndarray, media: tuple[Medium, ...]) -> int:
        """Tokens `ids` may take from `kept`: 0 unless they repeat its prompt and its media exactly."""
        if ids.size <= kept.prompt_len or _common_prefix(ids, kept.ids[: kept.prompt_len]) < kept.prompt_len:
            return 0
        if tuple(m for m in media if m.start < kept.prompt_len) != kept.media:
            return 0
        shared = min(_common_prefix(ids, kept.ids), ids.size - 1)
        for medium in media:  # never cut inside an image or a clip: its features come whole
            if medium.start < shared < medium.end:
                shared = medium.start
        return shared

    def keep(self, context: KeptContext) -> None:
        """Keep a conversation's cache; the oldest go first past the entry or byte bound."""
        if self.entries < 1 or context.nbytes > self.max_bytes:
            return
        self._kept.append(context)
        self._evict()

    def resize(self, max_bytes: int) -> None:
        """A new byte bound; the oldest go now until the kept caches fit it."""
        self.max_bytes = max_bytes
        self._evict()

    def _evict(self) -> None:
        while len(self._kept) > self.entries or sum(k.nbytes for k in self._kept) > self.max_bytes:
            self._kept.popleft()
