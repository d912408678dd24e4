"""The state directory gone bad: read-only, full, or holding a corrupt text-cache file.

The CLIP text cache is the only thing written there; it is a head start, never a need. The read-only
and full directories are real filesystems (tmpfs mounted in the service's own mount namespace), so
the errors are the kernel's own (EROFS, ENOSPC).
"""

from __future__ import annotations

from pathlib import Path

from service import Service

PROMPTS = ["a red circle", "a blue square"]
CONFIG = {"clip": {"preload_prompts": PROMPTS}}


def _mounted(state: Path, options: str, fill: bool = False) -> list[str]:
    """Run the service with a fresh tmpfs on `state` (mounted with `options`), optionally filled up."""
    script = 'mount -t tmpfs -o "$1" tmpfs "$0" && shift'
    if fill:
        script += ' && (dd if=/dev/zero of="$0/filler" bs=1k 2>/dev/null || true)'
    script += ' && shift && exec "$@"'
    # sh -c SCRIPT state options -- command...: "$0" is the directory, "$1" the options.
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(state), options, "--"]


def _classify(service: Service) -> int:
    body = {"texts": ["a green triangle"]}
    return service.http.post("/v1/embeddings/text", json=body).status_code


def _serve_then_stop(tmp_path: Path, wrap: list[str] | None, state: Path) -> str:
    service = Service(tmp_path, CONFIG, {"STATE_DIRECTORY": str(state)}, wrap).wait_ready()
    try:
        assert _classify(service) == 200
        assert _classify(service) == 200
    finally:
        assert service.stop() == 0  # the worker saves its cache as it stops, and cannot
    return service.logs()


def test_a_read_only_state_directory_is_logged_and_the_service_serves(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    logs = _serve_then_stop(tmp_path, _mounted(state, "ro,size=64k"), state)
    assert "event=text_cache_save_failed" in logs and "Read-only file system" in logs


def test_a_full_state_directory_is_logged_and_the_service_serves(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    logs = _serve_then_stop(tmp_path, _mounted(state, "size=64k", fill=True), state)
    assert "event=text_cache_save_failed" in logs and "No space left on device" in logs
    assert not [p for p in state.iterdir() if p.name.startswith(".clip-cache-")]  # no half-written file


def test_a_corrupt_text_cache_file_is_logged_and_the_service_starts_cold(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "clip-text-cache.npz").write_bytes(b"PK\x03\x04 not a whole zip")
    logs = _serve_then_stop(tmp_path, None, state)
    assert "event=text_cache_unreadable" in logs
    assert "event=text_cache_saved" in logs  # and a good one replaced it
