"""The double's knobs, all environment variables so they reach worker subprocesses too.

HAILO_DOUBLE_VERSION is read once, when `hailo_platform` is imported (like a wheel's version is fixed);
the others are read each time they matter, so a test can change them between two calls.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

VERSION_VAR = "HAILO_DOUBLE_VERSION"
STATE_DIR_VAR = "HAILO_DOUBLE_STATE_DIR"
WAIT_VAR = "HAILO_DOUBLE_WAIT_S"
TOKEN_DELAY_VAR = "HAILO_DOUBLE_TOKEN_DELAY_S"
INFER_DELAY_VAR = "HAILO_DOUBLE_INFER_DELAY_S"
LOAD_DELAY_VAR = "HAILO_DOUBLE_LOAD_S"
THREADS_VAR = "HAILO_DOUBLE_THREADS"
JOURNAL_VAR = "HAILO_DOUBLE_JOURNAL"
TEMPERATURE_VAR = "HAILO_DOUBLE_CHIP_TEMP_C"

DEFAULT_VERSION = "5.2.0"
DEFAULT_WAIT_S = 0.5  # HailoRT's server waits 5 s (WAIT_FOR_VDEVICE_TIMEOUT); tests want it short
DEFAULT_CHIP_TEMP_C = 52.5


@dataclass(frozen=True)
class VersionProfile:
    """What one HailoRT release's Python API has; see README.md for the sources of each line."""

    version: str
    has_genai: bool  # 5.0.0's wheel has no hailo_platform.genai at all
    has_optimize_memory: bool  # VLM/LLM(..., optimize_memory_on_device=False), from 5.1.0
    has_videos: bool  # VLM.generate(..., videos=None, ...), from 5.2.0
    has_tools: bool  # LLM.generate(..., tools=None, ...), from 5.2.0
    has_context_api: bool  # get_context_usage_size, max_context_capacity, save/load_context, 5.1.1
    has_speech2text: bool  # genai.Speech2Text, from 5.1.0
    generate_all_timeout_ms: int | None  # generate_all's timeout_ms default (None: no parameter)


PROFILES = {
    p.version: p
    for p in (
        VersionProfile("5.0.0", False, False, False, False, False, False, None),
        VersionProfile("5.0.1", True, False, False, False, False, False, None),
        VersionProfile("5.1.0", True, True, False, False, False, True, 10000),
        VersionProfile("5.1.1", True, True, False, False, True, True, 600000),
        VersionProfile("5.2.0", True, True, True, True, True, True, 600000),
    )
}


def active_profile() -> VersionProfile:
    """The profile HAILO_DOUBLE_VERSION names (default 5.2.0); an unknown version is an ImportError."""
    version = os.environ.get(VERSION_VAR, DEFAULT_VERSION)
    if version not in PROFILES:
        raise ImportError(f"{VERSION_VAR}={version!r}: the HailoRT double mimics only {', '.join(PROFILES)}")
    return PROFILES[version]


def _float(var: str, default: float) -> float:
    raw = os.environ.get(var, "")
    return float(raw) if raw.strip() else default


def state_dir() -> Path:
    """Where the device's lock files live: one directory is one simulated Hailo-10H."""
    raw = os.environ.get(STATE_DIR_VAR, "")
    path = Path(raw) if raw else Path(tempfile.gettempdir()) / f"hailo-double-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def vdevice_wait_s() -> float:
    """How long creating a VDevice waits for the device before failing with status 74."""
    return _float(WAIT_VAR, DEFAULT_WAIT_S)


def token_delay_s() -> float:
    """Simulated device time per generated token (0: as fast as the CPU runs the demo model)."""
    return _float(TOKEN_DELAY_VAR, 0.0)


def infer_delay_s() -> float:
    """Simulated device time per InferModel run (CLIP encoder), e.g. to make a run outlive a timeout."""
    return _float(INFER_DELAY_VAR, 0.0)


def load_delay_s() -> float:
    """Simulated extra time to load a VLM/LLM (the real Qwen2-VL-2B takes ~10 s)."""
    return _float(LOAD_DELAY_VAR, 0.0)


def onnx_threads() -> int:
    return int(_float(THREADS_VAR, 1))


def journal_path() -> Path | None:
    raw = os.environ.get(JOURNAL_VAR, "")
    return Path(raw) if raw else None


def chip_temperature_c() -> float:
    return _float(TEMPERATURE_VAR, DEFAULT_CHIP_TEMP_C)
