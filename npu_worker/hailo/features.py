"""Which HailoRT release is installed and which optional parts of its GenAI API it has (5.0 and later).

Detected from hailo_platform.__version__ and from the signatures and methods of the classes, never by
trying a call and catching its failure: a failed device call costs seconds and can leave state behind.

Known differences (from HailoRT's Python sources):
- 5.1.0 adds `optimize_memory_on_device` to VLM.__init__ (host-side tokenization);
- 5.1.1 adds max_context_capacity(), get_context_usage_size(), save_context()/load_context();
- 5.2.0 adds the `videos` argument of VLM.generate().
Read from the v5.0.1-v5.2.0 tags of hailo-ai/hailort; 5.3.0's sources were not available, so its
additions are unknown: detection by signature reports whatever of the above it has.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: assume the oldest API
        return frozenset()


@dataclass(frozen=True)
class HailoFeatures:
    version: str
    optimize_memory_on_device: bool  # VLM(vdevice, hef, optimize_memory_on_device=...)
    videos: bool  # VLM.generate(..., videos=[...])
    max_context_capacity: bool  # VLM.max_context_capacity()
    context_usage: bool  # VLM.get_context_usage_size()
    save_context: bool  # VLM.save_context() / load_context()

    @property
    def names(self) -> list[str]:
        """The optional features present, by the API names they stand for."""
        flags = {
            "optimize_memory_on_device": self.optimize_memory_on_device,
            "videos": self.videos,
            "max_context_capacity": self.max_context_capacity,
            "get_context_usage_size": self.context_usage,
            "save_context": self.save_context,
        }
        return [name for name, present in flags.items() if present]

    def as_dict(self) -> dict[str, Any]:
        return {"hailort": self.version, "features": self.names}


def detect_features(hailo_platform: ModuleType, genai: ModuleType) -> HailoFeatures:
    vlm = genai.VLM
    return HailoFeatures(
        version=str(getattr(hailo_platform, "__version__", "unknown")),
        optimize_memory_on_device="optimize_memory_on_device" in _parameters(vlm.__init__),
        videos="videos" in _parameters(vlm.generate),
        max_context_capacity=callable(getattr(vlm, "max_context_capacity", None)),
        context_usage=callable(getattr(vlm, "get_context_usage_size", None)),
        save_context=callable(getattr(vlm, "save_context", None)),
    )
