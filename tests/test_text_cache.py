"""The CLIP text-embedding cache: LRU within its byte bound, and a saved copy that survives restarts."""

from pathlib import Path

import numpy as np

from npu_worker.text_cache import TextEmbeddingCache


def vec(value: float, dim: int = 4) -> np.ndarray:
    return np.full(dim, value, dtype=np.float32)


def test_hits_misses_and_lru_eviction_by_bytes() -> None:
    cache = TextEmbeddingCache(max_bytes=3 * 16)  # three 4-float vectors
    for i in range(3):
        cache.put(("m", (), f"t{i}"), vec(i))
    assert cache.get(("m", (), "t0")) is not None  # t0 is now the most recent
    cache.put(("m", (), "t3"), vec(3))
    assert cache.get(("m", (), "t1")) is None  # the least recent went
    assert cache.get(("m", (), "t0")) is not None and len(cache) == 3 and cache.bytes == 48
    assert (cache.hits, cache.misses) == (2, 1)


def test_templates_are_part_of_the_key() -> None:
    cache = TextEmbeddingCache(1024)
    cache.put(("m", ("a photo of a {}.",), "cat"), vec(1))
    assert cache.get(("m", (), "cat")) is None


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cache = TextEmbeddingCache(1024)
    cache.put(("m", ("x {}",), "red circle"), vec(0.5))
    cache.save(tmp_path / "cache.npz")
    assert not cache.dirty
    restored = TextEmbeddingCache(1024)
    assert restored.load(tmp_path / "cache.npz", dim=4) == 1
    assert np.array_equal(restored.get(("m", ("x {}",), "red circle")), vec(0.5))  # type: ignore[arg-type]


def test_unreadable_or_foreign_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert TextEmbeddingCache(1024).load(tmp_path / "bad.npz", dim=4) == 0
    other = TextEmbeddingCache(1024)
    other.put(("m", (), "t"), vec(1, dim=8))
    other.save(tmp_path / "other.npz")
    assert TextEmbeddingCache(1024).load(tmp_path / "other.npz", dim=4) == 0
    assert TextEmbeddingCache(1024).load(tmp_path / "missing.npz", dim=4) == 0


def test_a_damaged_file_of_any_kind_is_skipped(tmp_path: Path) -> None:
    good = TextEmbeddingCache(1024)
    good.put(("m", (), "cat"), vec(1))
    saved = tmp_path / "good.npz"
    good.save(saved)
    whole = saved.read_bytes()
    wrong_header = tmp_path / "header.npz"
    np.savez(wrong_header, keys=np.array('"not a mapping"'), vectors=np.zeros((1, 4), np.float32))
    damaged = {
        "empty.npz": b"",
        "text.npz": b"not a cache at all",
        "truncated.npz": whole[: len(whole) // 2],
        "header.npz": wrong_header.read_bytes(),
    }
    for name, content in damaged.items():
        path = tmp_path / name
        path.write_bytes(content)
        cache = TextEmbeddingCache(1024)
        assert cache.load(path, 4) == 0, name
        assert len(cache) == 0
