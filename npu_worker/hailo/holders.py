"""The Hailo device nodes, and which processes hold them open (found by scanning /proc/<pid>/fd).

Used to say who is in the way when the device is busy (in the worker's npu_busy detail and in
`hailo-vision doctor`), and to tell a busy device from a failure when HailoRT's status could mean
either (load_failures.py). Processes of other users cannot be inspected without root; they are
counted. The Hailo-10H node is /dev/hailo0; newer hailo1x_pci drivers were seen naming it /dev/h1x-0.
$HAILO_VISION_DEVICE_DIR moves the directory searched (default /dev): tests point it at the HailoRT
double's simulated device node.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from npu_worker.config import DEVICE_DIR_ENV

NODE_PATTERNS = ("hailo[0-9]*", "h1x-[0-9]*")


def device_nodes() -> list[Path]:
    """Every Hailo device node present, /dev/hailo0 first."""
    dev = Path(os.environ.get(DEVICE_DIR_ENV) or "/dev")
    return sorted({p for pattern in NODE_PATTERNS for p in dev.glob(pattern)})


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str  # the process name (comm), e.g. hailo-ollama
    cmdline: str


@dataclass(frozen=True)
class HolderScan:
    holders: tuple[Holder, ...]
    unreadable: int  # processes whose open files could not be listed (other users' without root)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _holds(fd_dir: Path, targets: frozenset[str]) -> bool:
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) in targets:
                return True
        except OSError:  # the fd closed while we looked
            continue
    return False


def scan_holders(
    devices: Sequence[Path] | None = None, proc: Path = Path("/proc"), exclude_self: bool = True
) -> HolderScan:
    """Every process with one of `devices` (default: all Hailo nodes) open, except this one."""
    targets = frozenset(os.path.realpath(d) for d in (device_nodes() if devices is None else devices))
    holders: list[Holder] = []
    unreadable = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or (exclude_self and int(entry.name) == os.getpid()):
            continue
        try:
            held = _holds(entry / "fd", targets)
        except PermissionError:
            unreadable += 1
            continue
        except OSError:  # the process ended while we looked
            continue
        if held:
            holders.append(Holder(int(entry.name), _read(entry / "comm"), _read(entry / "cmdline")))
    return HolderScan(tuple(sorted(holders, key=lambda h: h.pid)), unreadable)


def describe_holders(scan: HolderScan) -> str:
    """'pid 812 (hailo-ollama), pid 903 (python3)'; '' when no holder is visible."""
    return ", ".join(f"pid {h.pid} ({h.name or '?'})" for h in scan.holders)
