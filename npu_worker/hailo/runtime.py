"""HailoRT's Python modules, imported when the backend loads, and the exceptions they raise.

Which classes to catch depends on the release (pyhailort.cpp, pyhailort.py):
- 5.0.1-5.1.1: hailo_platform.HailoRTException is a plain Python class of pyhailort.py; the native
  HailoRTStatusException and HailoRTCustomException derive from Exception only. Calls pyhailort.py
  does not wrap (VLM(...), the releases) raise the native one, which `except HailoRTException`
  misses;
- 5.2.0: the native exceptions are registered under hailo_platform.HailoRTException.
`HailoModules.errors` holds all of them, so one `except hailo.errors` is right on every release.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from npu_worker.backend import ModelLoadError

NATIVE_EXCEPTIONS = ("HailoRTException", "HailoRTStatusException", "HailoRTCustomException")


@dataclass(frozen=True)
class HailoModules:
    platform: ModuleType  # hailo_platform
    genai: ModuleType  # hailo_platform.genai
    native: ModuleType  # hailo_platform.pyhailort._pyhailort, the bindings

    @property
    def version(self) -> str:
        return str(getattr(self.platform, "__version__", "unknown"))

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """Every exception class HailoRT raises, Python layer and native, without repeats."""
        found = [self.platform.HailoRTException, *(getattr(self.native, n, None) for n in NATIVE_EXCEPTIONS)]
        return tuple(dict.fromkeys(c for c in found if isinstance(c, type) and issubclass(c, BaseException)))

    def status_name(self, code: int) -> str:
        """hailort.h's name of a status number ('' when the library knows none)."""
        return str(self.native.get_status_message(code))


def import_hailo() -> HailoModules:
    """hailo_platform, its genai module and its bindings, or a ModelLoadError saying how to get them."""
    try:
        platform = importlib.import_module("hailo_platform")
        native = importlib.import_module("hailo_platform.pyhailort._pyhailort")
    except ImportError as exc:
        raise ModelLoadError(
            f"backend hailo needs HailoRT's Python package hailo_platform (5.x) in this Python environment "
            f"({exc}); install Hailo's hailort wheel, or run `hailo-vision doctor`"
        ) from exc
    try:
        genai = importlib.import_module("hailo_platform.genai")
    except ImportError as exc:
        version = getattr(platform, "__version__", "unknown")
        raise ModelLoadError(
            f"HailoRT {version} has no GenAI API (hailo_platform.genai, HailoRT 5.0.1 and later): {exc}"
        ) from exc
    return HailoModules(platform, genai, native)
