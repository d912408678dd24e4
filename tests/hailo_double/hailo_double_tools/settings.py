"""The double's knobs, all environment variables so they reach worker subprocesses too.

HAILO_DOUBLE_VERSION is read once, when `hailo_platform` is imported (like a wheel's version is fixed);
the others are read each time they matter, so a test can change them between two calls.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

VERSION_VAR = "HAILO_DOUBLE_VERSION"
STATE_DIR_VAR = "HAILO_DOUBLE_STATE_DIR"
WAIT_VAR = "HAILO_DOUBLE_WAIT_S"
TOKEN_DELAY_VAR = "HAILO_DOUBLE_TOKEN_DELAY_S"
PREFILL_DELAY_VAR = "HAILO_DOUBLE_PREFILL_DELAY_S"
INFER_DELAY_VAR = "HAILO_DOUBLE_INFER_DELAY_S"
LOAD_DELAY_VAR = "HAILO_DOUBLE_LOAD_S"
THREADS_VAR = "HAILO_DOUBLE_THREADS"
JOURNAL_VAR = "HAILO_DOUBLE_JOURNAL"
TEMPERATURE_VAR = "HAILO_DOUBLE_CHIP_TEMP_C"
SESSION_DROP_VAR = "HAILO_DOUBLE_SESSION_DROP_STATUS"

DEFAULT_VERSION = "5.2.0"
DEFAULT_WAIT_S = 0.5  # HailoRT's server waits 5 s (WAIT_FOR_VDEVICE_TIMEOUT); tests want it short
DEFAULT_CHIP_TEMP_C = 52.5
# What the client sees when the 5.2.0 server drops a GenAI session unanswered: the transport closing
# (62, HAILO_COMMUNICATION_CLOSED), or a transfer timing out (4, HAILO_TIMEOUT).
SESSION_DROP_STATUSES = (62, 4)


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
    has_text2image: bool = False  # genai.Text2Image, 5.1.0 only
    # pyhailort.cpp registers HailoRTStatusException under HailoRTException (5.2.0); before, under
    # Exception, while hailo_platform.HailoRTException is a Python class of pyhailort.py.
    status_under_hailort_exception: bool = False
    # 5.2.0's server refuses a second KV cache by dropping the session unanswered (vlm_server.cpp);
    # before, the double answers status 6 (inferred: those servers have no KV-cache check at all).
    kv_refusal_drops_session: bool = False
    # optimize_memory_on_device=True with the HEF already on the server: 6 before the transfer
    # (5.2.0 vlm.cpp:93-94), 65 after the server made the model (5.1.x, no token embedder).
    optimize_hef_on_server_status: int | None = None


PROFILES = {
    p.version: p
    for p in (
        VersionProfile("5.0.0", False, False, False, False, False, False, None),
        VersionProfile("5.0.1", True, False, False, False, False, False, None),
        VersionProfile(
            "5.1.0",
            True,
            True,
            False,
            False,
            False,
            True,
            10000,
            has_text2image=True,
            optimize_hef_on_server_status=65,
        ),
        VersionProfile(
            "5.1.1", True, True, False, False, True, True, 600000, optimize_hef_on_server_status=65
        ),
        VersionProfile(
            "5.2.0",
            True,
            True,
            True,
            True,
            True,
            True,
            600000,
            status_under_hailort_exception=True,
            kv_refusal_drops_session=True,
            optimize_hef_on_server_status=6,
        ),
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


def state_dir_in(env: Mapping[str, str]) -> Path:
    """The state directory an environment names (default: one per user under $TMPDIR)."""
    raw = env.get(STATE_DIR_VAR, "")
    return Path(raw) if raw else Path(tempfile.gettempdir()) / f"hailo-double-{os.getuid()}"


def state_dir() -> Path:
    """Where the device's lock files live: one directory is one simulated Hailo-10H."""
    path = state_dir_in(os.environ)
    path.mkdir(parents=True, exist_ok=True)
    return path


def device_node() -> Path:
    """The simulated /dev/hailo0 every holder of the device keeps open (see locks.py)."""
    node = state_dir() / "dev" / "hailo0"
    node.parent.mkdir(exist_ok=True)
    return node


def vdevice_wait_s() -> float:
    """How long creating a VDevice waits for the device before failing with status 74."""
    return _float(WAIT_VAR, DEFAULT_WAIT_S)


def token_delay_s() -> float:
    """Simulated device time per generated token (0: as fast as the CPU runs the demo model)."""
    return _float(TOKEN_DELAY_VAR, 0.0)


def prefill_delay_s() -> float:
    """Simulated device time per prompt token prefilled (frames' tokens included; 0: the CPU's time)."""
    return _float(PREFILL_DELAY_VAR, 0.0)


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


def session_drop_status() -> int:
    """The status a client reads when the server dropped its GenAI session (default 62)."""
    status = int(_float(SESSION_DROP_VAR, SESSION_DROP_STATUSES[0]))
    if status not in SESSION_DROP_STATUSES:
        raise ValueError(f"{SESSION_DROP_VAR}={status}: one of {SESSION_DROP_STATUSES}")
    return status
