"""TEST-ONLY double of HailoRT's Python API (`hailo_platform`); see README.md. Never shipped.

Tests reach it through this package (tests/ is on sys.path via conftest.py). Importing it puts the
double's directory on sys.path, so `hailo_platform` and `hailo_double_tools` import in-process:
  from hailo_double import subprocess_env, import_version, DEMO_VLM_DIR, DEMO_CLIP_DIR
  pytest_plugins = ["hailo_double.fixtures"]   # fixtures hailo_env, demo_vlm_hef, demo_clip_hef
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

DOUBLE_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOUBLE_DIR.parent.parent
DEMO_VLM_DIR = REPO_ROOT / "models" / "demo" / "qwen2-vl-demo"
DEMO_CLIP_DIR = REPO_ROOT / "models" / "demo" / "clip-demo"


def activate() -> None:
    """Make `hailo_platform` and `hailo_double_tools` importable in this process."""
    if str(DOUBLE_DIR) not in sys.path:
        sys.path.insert(0, str(DOUBLE_DIR))


def subprocess_env(base: dict[str, str] | None = None, **settings: str) -> dict[str, str]:
    """An environment for a child process (e.g. the NPU worker) that imports the double."""
    activate()
    from hailo_double_tools.holder import double_env

    return double_env(base, **settings)


def import_version(version: str) -> ModuleType:
    """Re-import `hailo_platform` mimicking another HailoRT version (sets HAILO_DOUBLE_VERSION).

    Objects made from the previous import keep their old classes; use this at the start of a test.
    """
    activate()
    os.environ["HAILO_DOUBLE_VERSION"] = version
    for name in [m for m in sys.modules if m == "hailo_platform" or m.startswith("hailo_platform.")]:
        del sys.modules[name]
    return importlib.import_module("hailo_platform")


activate()
