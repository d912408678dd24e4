"""Open the files of an exported model directory, failing at load with the file and the fault named.

Every CPU runner loads through here, so a missing, truncated or malformed file is reported the same
way (`ModelLoadError`) before the first request, never as a crash in the middle of one.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort
from tokenizers import Tokenizer

from npu_worker.backend import ModelLoadError

SMALL_MODEL_BYTES = 64 * 2**20  # below this, one intra-op thread is faster than several


def read_json(model_dir: Path, name: str, required: bool = True) -> dict[str, Any]:
    """A JSON object file of the model directory ({} when optional and absent)."""
    path = model_dir / name
    if not path.is_file():
        if required:
            raise ModelLoadError(f"{path}: missing (expected in the model directory {model_dir})")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def require_key(data: dict[str, Any], key: str, path: Path, kind: type | tuple[type, ...] = int) -> Any:
    """data[key], checked for presence and type, else a ModelLoadError naming the file and key."""
    if key not in data:
        raise ModelLoadError(f"{path}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ModelLoadError(f"{path}: key {key!r} should be {kind}, found {value!r}")
    return value


def load_tokenizer(model_dir: Path, name: str = "tokenizer.json") -> Tokenizer:
    path = model_dir / name
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing (expected in the model directory {model_dir})")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise ModelLoadError(f"{path}: not a valid tokenizers file ({exc})") from exc


def weights_bytes(path: Path) -> int:
    """The size of an ONNX file with its external data (`<name>_data`, `<name>.data`, ... beside it)."""
    return sum(p.stat().st_size for p in path.parent.glob(f"{glob.escape(path.name)}*") if p.is_file())


def auto_threads(path: Path) -> int:
    """Intra-op threads for a session on `path` when the config leaves it to us (cpu_threads: 0).

    One for a small model, whose matrices are too small to split (the demo VLM decodes 40 tokens in
    23.6 ms on one thread, 28.1 ms on two), else the number of cores, at most 4.
    """
    if weights_bytes(path) < SMALL_MODEL_BYTES:
        return 1
    return min(4, os.cpu_count() or 1)


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle intra-op threads sleep instead of spinning: the Pi shares its cores with hailo-ollama and
    # the API, and on a loaded 2-core machine spinning halved decode speed (measured in bench/engine.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def open_session(
    model_dir: Path,
    relative_path: str,
    expected_inputs: tuple[str, ...] = (),
    expected_outputs: tuple[str, ...] = (),
    threads: int | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime CPU session on model_dir/relative_path, with its input/output names checked."""
    path = model_dir / relative_path
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing (expected in the model directory {model_dir})")
    try:
        session = ort.InferenceSession(
            str(path),
            sess_options=session_options(threads or auto_threads(path)),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    missing_in = [n for n in expected_inputs if n not in inputs]
    missing_out = [n for n in expected_outputs if n not in outputs]
    if missing_in or missing_out:
        raise ModelLoadError(
            f"{path}: not the expected export layout; missing inputs {missing_in} / outputs {missing_out} "
            f"(it has inputs {sorted(inputs)}, outputs {sorted(outputs)})"
        )
    return session
