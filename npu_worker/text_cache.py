"""The CLIP text-embedding cache: LRU, bounded in bytes, saved to disk so a restarted worker starts warm.

Camera pipelines ask the same labels every frame, so a prompt's (ensemble) text embedding is computed
once and served from here after. Keys are (model, template set, text): the same text under other
templates is another embedding.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from npu_worker.logs import log_event

log = logging.getLogger("npu_worker.text_cache")

CacheKey = tuple[str, tuple[str, ...], str]
FORMAT_VERSION = 1
SAVE_INTERVAL_S = 30.0


def cache_path(configured: str) -> Path | None:
    """Where the cache lives: configured, else systemd's state directory, else nowhere."""
    if configured:
        return Path(configured)
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) / "clip-text-cache.npz" if state else None


class TextEmbeddingCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.bytes = 0
        self.dirty = False
        self._entries: collections.OrderedDict[CacheKey, np.ndarray] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> np.ndarray | None:
        vector = self._entries.get(key)
        if vector is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return vector

    def resize(self, max_bytes: int) -> None:
        """A new bound (memory pressure shrinks it); the least recently used entries go first."""
        self.max_bytes = max_bytes
        self._evict()

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.nbytes

    def put(self, key: CacheKey, vector: np.ndarray) -> None:
        if vector.nbytes > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        stored = np.array(vector, dtype=np.float32, copy=True)
        self._entries[key] = stored
        self.bytes += stored.nbytes
        self.dirty = True
        self._evict()

    def save_due_in(self, now: float, last_save: float) -> float | None:
        """Seconds until unsaved entries are due on disk (<= 0: now); None when nothing is unsaved."""
        return last_save + SAVE_INTERVAL_S - now if self.dirty else None

    def save_quietly(self, path: Path | None) -> None:
        """Save if there is a file and something new; a failure is logged, never raised (the
        service keeps serving from memory)."""
        if path is None or not self.dirty:
            return
        try:
            self.save(path)
        except OSError as exc:
            log_event(log, "text_cache_save_failed", logging.WARNING, path=str(path), error=str(exc))

    def save(self, path: Path) -> None:
        """Write every entry atomically (a temp file renamed over the old one)."""
        keys = [[model, list(templates), text] for model, templates, text in self._entries]
        vectors = list(self._entries.values())
        dim = vectors[0].shape[0] if vectors else 0
        matrix = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".clip-cache-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, keys=np.array(json.dumps({"v": FORMAT_VERSION, "keys": keys})), vectors=matrix)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.dirty = False
        log_event(log, "text_cache_saved", path=str(path), entries=len(keys))

    def load(self, path: Path, dim: int) -> int:
        """Add the saved entries of embedding size `dim`; a missing, unreadable or corrupt file is
        skipped (logged): the cache is only a head start, and the worker must start without it."""
        if not path.is_file():
            return 0
        try:
            entries = _read(path)
        except Exception as exc:  # any damage (truncated zip, pickle, bad JSON, wrong shapes) is "unreadable"
            log_event(log, "text_cache_unreadable", logging.WARNING, path=str(path), error=repr(exc)[:200])
            return 0
        if entries and entries[0][1].shape[0] != dim:
            log_event(
                log, "text_cache_other_model", logging.WARNING, path=str(path), dim=entries[0][1].shape[0]
            )
            return 0
        for key, vector in entries:
            self.put(key, vector)
        self.dirty = False
        log_event(log, "text_cache_loaded", path=str(path), entries=len(self._entries))
        return len(self._entries)


def _read(path: Path) -> list[tuple[CacheKey, np.ndarray]]:
    """The saved entries, or an exception for any file this version did not write."""
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["keys"]))
        vectors = np.asarray(data["vectors"], dtype=np.float32)
    if header.get("v") != FORMAT_VERSION or vectors.ndim != 2 or len(header["keys"]) != len(vectors):
        raise ValueError("unexpected layout")
    return [
        ((str(model), tuple(str(t) for t in templates), str(text)), vector)
        for (model, templates, text), vector in zip(header["keys"], vectors, strict=True)
    ]
