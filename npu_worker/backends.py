"""Choose and build the backend the configuration asks for (`onnx`, `hailo`, or `auto`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from npu_worker.backend import Backend, ModelLoadError
from supervisor.config import Config

HAILO_DEVICE = Path("/dev/hailo0")


def hailo_available() -> bool:
    """A Hailo device node and the HailoRT Python package are both present."""
    return HAILO_DEVICE.exists() and importlib.util.find_spec("hailo_platform") is not None


def resolve_backend_name(config: Config) -> str:
    if config.backend == "auto":
        return "hailo" if hailo_available() else "onnx"
    return config.backend


def create_backend(config: Config) -> Backend:
    name = resolve_backend_name(config)
    if name == "onnx":
        from npu_worker.cpu.onnx_backend import OnnxBackend

        return OnnxBackend(config)
    raise ModelLoadError(
        f"backend {name!r} is not available in this build of hailo-vision; use backend: onnx (or auto)"
    )
