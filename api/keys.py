"""Optional API keys: loaded from config and a key file, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from npu_worker.config import ConfigError


def load_api_keys(inline: Iterable[str], key_file: str) -> frozenset[str]:
    """Keys from `api.api_keys` plus one per line of `api.api_key_file` (# comments skipped)."""
    keys = {k.strip() for k in inline if k.strip()}
    if key_file:
        path = Path(key_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"api.api_key_file: cannot read {path} ({exc.strerror})") from exc
        keys.update(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return frozenset(keys)


def valid_key(candidate: str, keys: frozenset[str]) -> bool:
    """Whether `candidate` is one of `keys`, comparing every key in constant time."""
    given = candidate.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched
