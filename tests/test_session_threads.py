"""ONNX Runtime threads when the config leaves them to us: one for a small model, the cores for a big one."""

from __future__ import annotations

import os
from pathlib import Path

from npu_worker.cpu.model_files import SMALL_MODEL_BYTES, auto_threads, open_session, weights_bytes

ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIP = ROOT / "models/demo/clip-demo"


def _sized(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)  # sparse: the size is what counts, not the bytes on disk
    return path


def test_external_data_counts_towards_the_model_size(tmp_path: Path) -> None:
    model = _sized(tmp_path / "decoder.onnx", 1000)
    _sized(tmp_path / "decoder.onnx_data", SMALL_MODEL_BYTES)
    _sized(tmp_path / "encoder.onnx", 5)  # another model beside it does not count
    assert weights_bytes(model) == 1000 + SMALL_MODEL_BYTES
    assert auto_threads(model) == min(4, os.cpu_count() or 1)


def test_a_small_model_gets_one_thread(tmp_path: Path) -> None:
    assert auto_threads(_sized(tmp_path / "tiny.onnx", SMALL_MODEL_BYTES - 1)) == 1


def test_sessions_on_the_demo_models_run_on_one_thread_unless_configured() -> None:
    automatic = open_session(DEMO_CLIP, "onnx/text_model.onnx")
    assert automatic.get_session_options().intra_op_num_threads == 1
    configured = open_session(DEMO_CLIP, "onnx/text_model.onnx", threads=2)
    assert configured.get_session_options().intra_op_num_threads == 2
