"""What systemd says about the unit, for `hailo-visionctl status` when the service does not answer.

Asked only where systemd runs (/run/systemd/system exists, as sd_booted() checks): `systemctl
is-active` and the `show` properties that tell why a service is down (its result, exit status,
restart count and the last STATUS= line the supervisor sent).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

UNIT = "hailo-vision.service"
SYSTEMD_RUNNING = Path("/run/systemd/system")
PROPERTIES = ("ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "StatusText")


def systemd_facts(unit: str = UNIT, booted: Path = SYSTEMD_RUNNING) -> dict[str, str] | None:
    """`is-active` and PROPERTIES of `unit`, or None where systemd is not the init system."""
    systemctl = shutil.which("systemctl")
    if not booted.is_dir() or systemctl is None:
        return None
    active = _run([systemctl, "is-active", unit])
    shown = _run([systemctl, "show", unit, "--property", ",".join(PROPERTIES)])
    facts = {"is-active": active.strip() or "unknown"}
    for line in shown.splitlines():
        key, _, value = line.partition("=")
        if key in PROPERTIES:
            facts[key] = value
    return facts


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
