"""Structured logging for all three processes: one line per event on stderr, logfmt or JSON.

journald takes stderr as it is. Callers pass the event name as the message and facts as `extra`
keys under "fields"; image bytes and API keys are never passed in.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        return json.dumps(text)
    return text


class _Formatter(logging.Formatter):
    def __init__(self, process_name: str, use_json: bool) -> None:
        super().__init__()
        self.process_name = process_name
        self.use_json = use_json

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "proc": self.process_name,
            "event": record.getMessage(),
        }
        event.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info).replace("\n", " | ")
        if self.use_json:
            return json.dumps(event, default=str)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in event.items())


def setup_logging(process_name: str, fmt: str = "logfmt", level: str = "info") -> None:
    """Route every logger of this process to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(process_name, fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for chatty in ("httpx", "httpcore"):  # a line per hailo-ollama poll; their warnings still pass
        logging.getLogger(chatty).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its facts as key=value fields."""
    logger.log(level, event, extra={"fields": fields})
