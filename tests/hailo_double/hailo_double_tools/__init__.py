"""Test-side tools of the HailoRT double: make double HEFs, hold the device from another process, journal.

Public helpers (imported lazily, so importing a submodule never drags in the rest):
  make_vlm_hef, make_llm_hef, make_clip_hef   write double HEF files (hef_files)
  never_stopping                               make one answer until its max tokens (hef_files)
  HeldDevice                                   run `python -m hailo_double_tools hold ...` (holder)
  JOURNAL, read_journal                        what the code under test asked of the double (journal)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "make_vlm_hef": "hailo_double_tools.hef_files",
    "make_llm_hef": "hailo_double_tools.hef_files",
    "make_clip_hef": "hailo_double_tools.hef_files",
    "never_stopping": "hailo_double_tools.hef_files",
    "HeldDevice": "hailo_double_tools.holder",
    "JOURNAL": "hailo_double_tools.journal",
    "read_journal": "hailo_double_tools.journal",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hailo_double_tools' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
