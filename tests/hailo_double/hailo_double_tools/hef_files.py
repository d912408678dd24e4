"""The double's stand-in for HEF files: a small JSON document with a .hef name, pointing at ONNX models.

The double cannot read real HEFs (a compiled, proprietary format). A double HEF says which demo model
plays the part of the compiled network and carries what the real HEF's embedded hailo-config JSON
carries for GenAI models (eos_token_id, stop_token_id, image_pad, chat_template; see
hailort_server/genai/llm/llm_server.cpp parse_config_json), plus the quantisation of a CLIP encoder's
output. make_*_hef write them; load_hef reads one and fails like the real library:

- no such file: status 13 HAILO_OPEN_FILE_FAILURE;
- not a double HEF at all (not JSON, no "double" key): status 92 HAILO_HEF_NOT_SUPPORTED (the real
  library's answer to a wrong magic/version header);
- a double HEF that is malformed, names missing model files, or is of the wrong kind for the call
  (a CLIP HEF given to VLM(...)): status 26 HAILO_INVALID_HEF.

The device runs HailoRT's server on its own filesystem; a GenAI HEF "exists on the server" when that
filesystem holds a file of the same path and hash (hailort_server/genai/utils.hpp v5.2.0:52-78,
handle_check_hef_exists_request). The double keeps that filesystem under `<state dir>/server-fs`;
put_hef_on_server copies a HEF there (on hardware: a HEF copied onto the device at the host's path).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from hailo_double_tools.native import (
    HAILO_HEF_NOT_SUPPORTED,
    HAILO_INVALID_HEF,
    HAILO_OPEN_FILE_FAILURE,
    fail,
)
from hailo_double_tools.settings import state_dir

VLM_KIND = "vlm"
LLM_KIND = "llm"
CLIP_KIND = "clip_image_encoder"
FORMAT_VERSION = 1
DEFAULT_KV_CACHE_SIZE = 2048  # the published Hailo GenAI HEFs' context length

# Device-side generation defaults (the real HEF may override them): VLMServer and LLMServer constants.
VLM_GENERATION_DEFAULTS = {
    "temperature": 0.01,
    "top_p": 0.1,
    "top_k": 1,
    "frequency_penalty": 1.0,
    "max_generated_tokens": 1024,
    "do_sample": False,
}
LLM_GENERATION_DEFAULTS = {
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
    "frequency_penalty": 1.1,
    "max_generated_tokens": 1024,
    "do_sample": True,
}


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _hailo_config(model_dir: Path) -> dict[str, Any]:
    """The GenAI config a real HEF embeds, derived from the Hugging Face export in model_dir."""
    config = _read_json(model_dir / "config.json")
    generation = _read_json(model_dir / "generation_config.json")
    tokenizer_config = _read_json(model_dir / "tokenizer_config.json")
    eos = generation.get("eos_token_id", config.get("text_config", {}).get("eos_token_id"))
    stop_ids = [int(t) for t in (eos if isinstance(eos, list) else [eos])]
    return {
        "eos_token_id": stop_ids[0],
        "stop_token_id": stop_ids,
        "image_pad": config.get("image_token_id"),
        "video_pad": config.get("video_token_id"),
        "chat_template": tokenizer_config["chat_template"],
    }


def frame_side(model_dir: Path) -> int:
    """The largest square frame within the image processor's max_pixels, in whole merged patches.

    The demo Qwen2-VL (max_pixels 12544, patch 14, merge 2) gives 112: frames of 112x112x3 become
    exactly 8x8 patches, 16 image tokens, with no resizing (Hailo's HEF takes a fixed 336x336 frame).
    """
    pre = _read_json(model_dir / "preprocessor_config.json")
    factor = int(pre.get("patch_size", 14)) * int(pre.get("merge_size", 2))
    max_pixels = int(pre.get("max_pixels", pre.get("size", {}).get("longest_edge", factor * factor)))
    return max(factor, math.isqrt(max_pixels) // factor * factor)


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


def make_vlm_hef(
    directory: str | Path,
    model_dir: str | Path,
    name: str = "qwen2-vl-demo.hef",
    frame: int | None = None,
    kv_cache_size: int = DEFAULT_KV_CACHE_SIZE,
    generation_defaults: dict[str, Any] | None = None,
    video_encoder: bool = False,
) -> Path:
    """Write a VLM double HEF for a Qwen2-VL export directory (the demo model by default);
    `video_encoder`: its frame encoder takes two frames (what VLM.generate's `videos` needs)."""
    model_dir = Path(model_dir).resolve()
    side = frame or frame_side(model_dir)
    return _write(
        Path(directory) / name,
        {
            "double": VLM_KIND,
            "format": FORMAT_VERSION,
            "model_dir": str(model_dir),
            "input_frame_shape": [side, side, 3],
            "frame_encoder_inputs": 2 if video_encoder else 1,
            "kv_cache_size": kv_cache_size,
            "hailo_config": _hailo_config(model_dir),
            "generation_defaults": {**VLM_GENERATION_DEFAULTS, **(generation_defaults or {})},
        },
    )


def make_llm_hef(
    directory: str | Path, model_dir: str | Path, name: str = "llm-demo.hef", kv_cache_size: int = 2048
) -> Path:
    """Write an LLM double HEF: the demo Qwen2-VL's text side plays a text-only LLM."""
    model_dir = Path(model_dir).resolve()
    return _write(
        Path(directory) / name,
        {
            "double": LLM_KIND,
            "format": FORMAT_VERSION,
            "model_dir": str(model_dir),
            "kv_cache_size": kv_cache_size,
            "hailo_config": _hailo_config(model_dir),
            "generation_defaults": dict(LLM_GENERATION_DEFAULTS),
        },
    )


def never_stopping(path: Path) -> Path:
    """Give a VLM or LLM double HEF a stop token its model never produces: every answer runs to its
    max tokens (for tests that need a long answer)."""
    document = _read_json(path)
    document["hailo_config"]["stop_token_id"] = [-1]
    return _write(path, document)


def make_clip_hef(
    directory: str | Path,
    clip_dir: str | Path,
    quantized: bool = True,
    name: str = "clip-demo-image-encoder.hef",
    qp_scale: float | None = None,
    qp_zp: float | None = None,
    bits: int = 8,
) -> Path:
    """Write a CLIP image-encoder double HEF for a CLIP export directory (the demo CLIP by default).

    Input: uint8 NHWC frames of the preprocessor's size (normalisation happens "inside the HEF").
    Output: the L2-normalised image embedding, NC order. A quantised output is `bits` wide (8, the
    usual, or 16: its default format is then UINT16) with qp_zp at mid-range (128 / 32768) and a
    qp_scale calibrated on synthetic images to cover the output range with a 25 % margin, unless
    given. quantized=False makes FLOAT32 the default output.
    """
    from hailo_double_tools.clip_engine import calibrate_scale, encoder_geometry

    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, not {bits}")
    zero = float(2 ** (bits - 1)) if qp_zp is None else qp_zp
    clip_dir = Path(clip_dir).resolve()
    onnx_path = clip_dir / "onnx" / "vision_model.onnx"
    preprocessor = clip_dir / "preprocessor_config.json"
    (height, width), dim = encoder_geometry(onnx_path, preprocessor)
    scale = qp_scale if qp_scale is not None else calibrate_scale(onnx_path, preprocessor, zero, bits)
    network = clip_dir.name.replace("-", "_")
    return _write(
        Path(directory) / name,
        {
            "double": CLIP_KIND,
            "format": FORMAT_VERSION,
            "network_name": network,
            "vision_onnx": str(onnx_path),
            "preprocessor_config": str(preprocessor),
            "input": {"name": f"{network}/input_layer1", "shape": [height, width, 3]},
            "output": {
                "name": f"{network}/normalization1",
                "dim": dim,
                "quantized": quantized,
                "bits": bits,
                "qp_zp": zero,
                "qp_scale": scale,
            },
        },
    )


def require_file(path: str | Path) -> None:
    """Status 13 for a HEF path that is not a file on the host (VLMParams::set_model and friends)."""
    if not Path(path).is_file():
        fail(HAILO_OPEN_FILE_FAILURE, f"Hef file '{path}' does not exist")


def _server_copy(hef: str | Path, directory: Path | None = None) -> Path:
    return (directory or state_dir()) / "server-fs" / Path(hef).resolve().relative_to("/")


def put_hef_on_server(hef: str | Path, directory: str | Path | None = None) -> Path:
    """Copy a HEF onto the simulated device's filesystem at its host path (`directory`: a state dir)."""
    copy = _server_copy(hef, Path(directory) if directory else None)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(hef, copy)
    return copy


def hef_on_server(hef: str | Path) -> bool:
    """Does the device's filesystem hold this HEF at the same path, with the same content?"""
    copy = _server_copy(hef)
    return copy.is_file() and copy.read_bytes() == Path(hef).read_bytes()


def load_hef(source: str | Path | bytes, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Read a double HEF (a path, or the file's bytes) for a call accepting `kinds`, failing like HailoRT."""
    if isinstance(source, bytes):
        origin, raw = "HEF buffer", source
    else:
        origin = str(source)
        require_file(source)
        raw = Path(source).read_bytes()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if not isinstance(document, dict) or "double" not in document:
        fail(HAILO_HEF_NOT_SUPPORTED, f"{origin}: HEF magic does not match (not a HailoRT double HEF)")
    if document["double"] not in kinds:
        fail(HAILO_INVALID_HEF, f"{origin}: a {document['double']!r} HEF cannot be used here (needs {kinds})")
    for key in ("model_dir", "vision_onnx", "preprocessor_config"):
        if key in document and not Path(document[key]).exists():
            fail(HAILO_INVALID_HEF, f"{origin}: {key} {document[key]} does not exist")
    return document
