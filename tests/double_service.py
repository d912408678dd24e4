"""The real service on the Hailo backend, against the HailoRT double with the demo models as HEFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, subprocess_env
from hailo_double_tools import make_clip_hef, make_vlm_hef
from service import Service


def double_service(
    tmp: Path, config: dict[str, Any] | None = None, clip_quantized: bool = True, **double: str
) -> tuple[Service, Path]:
    """The service (not started yet) and the double's journal. `config` is added to the Hailo
    backend's (its `hailo` keys beside the HEFs); `double` sets HAILO_DOUBLE_* variables, e.g.
    HAILO_DOUBLE_TOKEN_DELAY_S="0.05"."""
    journal = tmp / "journal.jsonl"
    env = subprocess_env(
        {}, HAILO_DOUBLE_STATE_DIR=str(tmp / "device"), HAILO_DOUBLE_JOURNAL=str(journal), **double
    )
    extra = dict(config or {})
    hailo = {
        "vlm_hef": str(make_vlm_hef(tmp / "hef", DEMO_VLM_DIR)),
        "clip_hef": str(make_clip_hef(tmp / "hef", DEMO_CLIP_DIR, quantized=clip_quantized)),
        **extra.pop("hailo", {}),
    }
    return Service(tmp, {**extra, "backend": "hailo", "hailo": hailo}, env), journal
