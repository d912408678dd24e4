"""Choose and build the backend the configuration asks for (`onnx`, `hailo`, or `auto`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable

from npu_worker.backend import Backend, ModelLoadError
from npu_worker.config import FACTORY_ENV, Config
from npu_worker.hailo.holders import device_nodes


def hailo_available() -> bool:
    """A Hailo device node (/dev/hailo0, or /dev/h1x-0 of newer drivers) and HailoRT's Python package."""
    return bool(device_nodes()) and importlib.util.find_spec("hailo_platform") is not None


def resolve_backend_name(config: Config) -> str:
    if config.backend == "auto":
        return "hailo" if hailo_available() else "onnx"
    return config.backend


def _factory_from_environment() -> Callable[[Config], Backend] | None:
    """$HAILO_VISION_BACKEND_FACTORY=module:callable builds the backend instead (benchmarks and tests:
    e.g. a latency-simulating encoder); never set it in production."""
    spec = os.environ.get(FACTORY_ENV, "")
    if not spec:
        return None
    module, _, attribute = spec.partition(":")
    try:
        factory: Callable[[Config], Backend] = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"${FACTORY_ENV}={spec!r}: cannot import it ({exc})") from exc
    return factory


def create_backend(config: Config) -> Backend:
    factory = _factory_from_environment()
    if factory is not None:
        return factory(config)
    name = resolve_backend_name(config)
    if name == "onnx":
        from npu_worker.cpu.onnx_backend import OnnxBackend

        return OnnxBackend(config)
    if name == "hailo":
        from npu_worker.hailo.backend import HailoBackend

        return HailoBackend(config)
    raise ModelLoadError(
        f"backend {name!r} is not available in this build of hailo-vision; use onnx, hailo or auto"
    )
