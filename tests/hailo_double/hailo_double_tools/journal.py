"""A record of what the code under test asked of the double, for tests to inspect.

Every entry is a dict with "event", "pid" and event fields. In-process tests read JOURNAL; when
HAILO_DOUBLE_JOURNAL names a file, entries are also appended to it as JSON lines, so a test can see
what a worker subprocess passed (read_journal()). Events: vdevice_created, vdevice_released,
model_created, model_released, generate (the arguments as passed, the prompt rendered for the device,
the frames' shapes), generation_ended (the status the client read, the device's final status, whether
the completion was released while still generating), context_cleared, infer (CLIP runs).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from hailo_double_tools.settings import journal_path

JOURNAL: list[dict[str, Any]] = []
_lock = threading.Lock()


def record(event: str, **fields: Any) -> dict[str, Any]:
    """Append an entry and return it (callers may add fields until it is written with `flush`)."""
    entry = {"event": event, "pid": os.getpid(), **fields}
    with _lock:
        JOURNAL.append(entry)
    return entry


def flush(entry: dict[str, Any]) -> None:
    """Write a finished entry to the HAILO_DOUBLE_JOURNAL file, if one is set."""
    path = journal_path()
    if path is None:
        return
    line = json.dumps(entry, default=repr)
    with _lock, path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def log(event: str, **fields: Any) -> dict[str, Any]:
    """Record and write at once."""
    entry = record(event, **fields)
    flush(entry)
    return entry


def read_journal(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The entries of a journal file (default: HAILO_DOUBLE_JOURNAL), oldest first."""
    target = Path(path) if path is not None else journal_path()
    if target is None or not target.is_file():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
