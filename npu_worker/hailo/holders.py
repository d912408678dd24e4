"""Which processes hold the Hailo device node open, found by scanning /proc/<pid>/fd.

Used to say who is in the way when the device is busy (in the worker's npu_busy detail and in
`hailo-vision doctor`). Processes of other users cannot be inspected without root; they are counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEVICE_NODE = Path("/dev/hailo0")


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


def _holds(fd_dir: Path, target: str) -> bool:
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == target:
                return True
        except OSError:  # the fd closed while we looked
            continue
    return False


def scan_holders(
    device: Path = DEVICE_NODE, proc: Path = Path("/proc"), exclude_self: bool = True
) -> HolderScan:
    """Every process with `device` open, except this one (it may hold the device itself)."""
    target = str(device)
    holders: list[Holder] = []
    unreadable = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or (exclude_self and int(entry.name) == os.getpid()):
            continue
        try:
            held = _holds(entry / "fd", target)
        except PermissionError:
            unreadable += 1
            continue
        except OSError:  # the process ended while we looked
            continue
        if held:
            holders.append(Holder(int(entry.name), _read(entry / "comm"), _read(entry / "cmdline")))
    return HolderScan(tuple(sorted(holders, key=lambda h: h.pid)), unreadable)


def describe_holders(scan: HolderScan) -> str:
    """'pid 812 (hailo-ollama)' etc., or why nobody could be named."""
    if scan.holders:
        return ", ".join(f"pid {h.pid} ({h.name or '?'})" for h in scan.holders)
    if scan.unreadable:
        return f"no process visible to this user ({scan.unreadable} processes could not be inspected)"
    return "no other process"
