"""The simulated device's ownership rules, kept in flock(2) locks under the state directory.

One state directory is one Hailo-10H. The kernel drops a process's flocks when it dies, which is how
the real device is freed when hailo-ollama or a worker is killed. Rules mirrored from HailoRT 5.2.0's
on-device server (hailort_server.cpp VDeviceManager::create_vdevice, mark_kv_cache_in_use):

- group "UNIQUE" (the default) wants the device to itself: it waits up to HAILO_DOUBLE_WAIT_S (real:
  5 s) for every other holder to go, then fails with status 74 (HAILO_OUT_OF_PHYSICAL_DEVICES; the
  server's 73 is mapped to 74 on the host by VDeviceHrpcClient::create_available_vdevice);
- any other group id coexists with holders of the same group; it fails at once, without the wait,
  while a UNIQUE holder or a holder of another group is active;
- one LLM/VLM KV cache per device, whatever the groups (hailort_server.cpp v5.2.0:119-129); how a
  refused model fails depends on the release (genai_admission.py).

While it holds the device, a process keeps the simulated device node `<state dir>/dev/hailo0` open,
as libhailort keeps /dev/hailo0 open: hailo-vision's holder scan finds it there when
$HAILO_VISION_DEVICE_DIR points at `<state dir>/dev` (double_env and the hailo_env fixture set it).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from hailo_double_tools.native import (
    HAILO_OUT_OF_PHYSICAL_DEVICES,
    HAILO_UNIQUE_VDEVICE_GROUP_ID,
    fail,
)
from hailo_double_tools.settings import device_node, state_dir, vdevice_wait_s

POLL_S = 0.02


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _group_file(directory: Path, group_id: str) -> Path:
    return directory / f"group-{hashlib.sha1(group_id.encode()).hexdigest()[:16]}.lock"


def _other_group_active(directory: Path, own_file: Path) -> bool:
    """True while some process holds a group lock file other than ours."""
    for path in directory.glob("group-*.lock"):
        if path == own_file:
            continue
        fd = _open(path)
        try:
            if not _try_lock(fd, fcntl.LOCK_EX):
                return True
        finally:
            os.close(fd)
    return False


class DeviceLease:
    """A VDevice's hold on the simulated device; shared by the models created from it.

    The VDevice and every VLM/LLM/InferModel made from it keep the lease; the locks go when the last
    of them lets go (the real VDevice is a shared_ptr the models keep alive).
    """

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.directory = state_dir()
        self._fds: list[int] = []
        self._users = 1
        if group_id == HAILO_UNIQUE_VDEVICE_GROUP_ID:
            self._acquire_unique()
        else:
            self._acquire_group()
        self._fds.append(_open(device_node()))

    def _give_up(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        fail(HAILO_OUT_OF_PHYSICAL_DEVICES, "Failed to create vdevice. there are not enough free devices.")

    def _acquire_unique(self) -> None:
        device = _open(self.directory / "device.lock")
        self._fds.append(device)
        deadline = time.monotonic() + vdevice_wait_s()
        while not _try_lock(device, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                self._give_up()
            time.sleep(POLL_S)

    def _acquire_group(self) -> None:
        registry = _open(self.directory / "registry.lock")
        fcntl.flock(registry, fcntl.LOCK_EX)  # makes check-then-lock atomic between processes
        try:
            device = _open(self.directory / "device.lock")
            self._fds.append(device)
            own = _group_file(self.directory, self.group_id)
            if not _try_lock(device, fcntl.LOCK_SH) or _other_group_active(self.directory, own):
                self._give_up()
            group = _open(own)
            self._fds.append(group)
            fcntl.flock(group, fcntl.LOCK_SH)
        finally:
            os.close(registry)

    @property
    def active(self) -> bool:
        return bool(self._fds)

    def retain(self) -> DeviceLease:
        self._users += 1
        return self

    def release(self) -> None:
        """Drop one user; the device is free once the VDevice and all its models have let go."""
        if not self._fds:
            return
        self._users -= 1
        if self._users <= 0:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()


class KVCacheLease:
    """The device's single KV cache, taken by a VLM or LLM for its lifetime."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls) -> KVCacheLease | None:
        """The KV cache, or None while another model (any process, any group) has it."""
        fd = _open(state_dir() / "kv_cache.lock")
        if not _try_lock(fd, fcntl.LOCK_EX):
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
