"""A broken CLIP model directory fails at load with ModelLoadError naming the file at fault."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from npu_worker.backend import ModelLoadError
from npu_worker.cpu.clip_runner import ClipRunner

MODEL_DIR = Path(__file__).resolve().parent.parent / "models/demo/clip-demo"


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(MODEL_DIR, tmp_path / "clip-copy"))


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BREAKAGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "missing config": ("config.json", lambda d: (d / "config.json").unlink()),
    "missing preprocessor": ("preprocessor_config.json", lambda d: (d / "preprocessor_config.json").unlink()),
    "missing tokenizer": ("tokenizer.json", lambda d: (d / "tokenizer.json").unlink()),
    "missing vision onnx": ("vision_model.onnx", lambda d: (d / "onnx/vision_model.onnx").unlink()),
    "missing text onnx": ("text_model.onnx", lambda d: (d / "onnx/text_model.onnx").unlink()),
    "malformed config": ("config.json", lambda d: truncate(d / "config.json")),
    "malformed preprocessor": (
        "preprocessor_config.json",
        lambda d: truncate(d / "preprocessor_config.json"),
    ),
    "malformed tokenizer": ("tokenizer.json", lambda d: truncate(d / "tokenizer.json")),
    "truncated vision onnx": ("vision_model.onnx", lambda d: truncate(d / "onnx/vision_model.onnx")),
    "truncated text onnx": ("text_model.onnx", lambda d: truncate(d / "onnx/text_model.onnx")),
    "wrong input names": (
        "vision_model.onnx",
        lambda d: shutil.copy(d / "onnx/text_model.onnx", d / "onnx/vision_model.onnx"),
    ),
    "no projection_dim": (
        "config.json",
        lambda d: edit_json(d / "config.json", lambda c: c.pop("projection_dim")),
    ),
    "unknown end token": (
        "tokenizer.json",
        lambda d: edit_json(
            d / "tokenizer_config.json", lambda c: c.update(eos_token="<eos>", pad_token="<eos>")
        ),
    ),
    "projection_dim disagrees": (
        "model.onnx",
        lambda d: edit_json(d / "config.json", lambda c: c.update(projection_dim=c["projection_dim"] + 1)),
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_directory_names_the_file(model_copy: Path, breakage: str) -> None:
    file_name, damage = BREAKAGES[breakage]
    damage(model_copy)
    with pytest.raises(ModelLoadError) as raised:
        ClipRunner(model_copy)
    assert file_name in raised.value.message
    assert str(model_copy) in raised.value.message


def test_missing_logit_scale_falls_back_to_100_with_a_warning(
    model_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edit_json(model_copy / "config.json", lambda c: c.pop("logit_scale"))
    with caplog.at_level(logging.WARNING):
        runner = ClipRunner(model_copy)
    assert math.isclose(runner.logit_scale, 100.0)
    assert "logit_scale" in caplog.text
