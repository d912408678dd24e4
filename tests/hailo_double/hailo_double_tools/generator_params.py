"""genai::LLMGeneratorParams as the bindings expose it, and the client-side check the library runs.

The real setters are pybind11 properties over C++ types: top_k, max_generated_tokens and seed are
uint32 (a negative or non-integer value is a TypeError from pybind11, before HailoRT sees it);
temperature, top_p and frequency_penalty are float; do_sample is bool. validate() mirrors
VLM::Impl::validate_generator_params (identical in 5.0.1 .. 5.2.0): temperature must be > 0 even
when do_sample is False, top_p in [0, 1], top_k >= 1, frequency_penalty != 0; each violation is
status 2 (HAILO_INVALID_ARGUMENT).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hailo_double_tools.native import HAILO_INVALID_ARGUMENT, fail

UINT32_MAX = 2**32 - 1
HAILO_RANDOM_SEED = UINT32_MAX  # the device draws a time-based seed for this value


def _uint32(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32_MAX:
        raise TypeError(
            f"(): incompatible function arguments. {name} takes an unsigned 32-bit int, got {value!r}"
        )
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"(): incompatible function arguments. {name} takes a float, got {value!r}")
    return float(value)


@dataclass
class GeneratorParams:
    temperature: float
    top_p: float
    top_k: int
    frequency_penalty: float
    max_generated_tokens: int
    do_sample: bool
    seed: int = HAILO_RANDOM_SEED

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("top_k", "max_generated_tokens", "seed"):
            value = _uint32(name, value)
        elif name in ("temperature", "top_p", "frequency_penalty"):
            value = _float(name, value)
        elif name == "do_sample":
            value = bool(value)
        super().__setattr__(name, value)

    @classmethod
    def from_defaults(cls, defaults: dict[str, Any]) -> GeneratorParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in defaults.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def validate(self) -> None:
        if not self.temperature > 0:
            fail(
                HAILO_INVALID_ARGUMENT,
                f"Temperature should be higher than '0'. received: '{self.temperature}'",
            )
        if not 0 <= self.top_p <= 1:
            fail(HAILO_INVALID_ARGUMENT, f"top_p should be in range [0, 1]. received: '{self.top_p}'")
        if not self.top_k > 0:
            fail(
                HAILO_INVALID_ARGUMENT,
                f"top_k should be greater than or equal to '1'. received: '{self.top_k}'",
            )
        if self.frequency_penalty == 0:
            fail(
                HAILO_INVALID_ARGUMENT,
                f"frequency_penalty must be a nonzero value. received: '{self.frequency_penalty}'",
            )
