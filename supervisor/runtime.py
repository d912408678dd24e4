"""The private runtime directory: ipc:// sockets and the resolved config the children read.

Which directory: config.supervisor.runtime_dir if set, else $RUNTIME_DIRECTORY (systemd's
RuntimeDirectory=, first entry), else a new temporary directory. It is made mode 0700; the
supervisor removes it at exit only if it created it. A lock file keeps a second supervisor from
taking over the sockets of a running one in the same directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from npu_worker.config import Config

CONFIG_FILE = "config.json"
LOCK_FILE = "supervisor.lock"


class RuntimeDirError(RuntimeError):
    """The runtime directory cannot be made or is in use by another supervisor."""


def _create_private(path: Path) -> bool:
    """Make `path` (mode 0700) if missing; True if it was created here."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise RuntimeDirError(f"{path}: runtime directory exists and is not a directory") from None
        path.chmod(0o700)
        return False
    return True


class RuntimeDir:
    """Context manager: the runtime directory, locked, with config.json written into it."""

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._environ = os.environ if environ is None else environ
        self.path = Path()
        self.created = False
        self._lock_fd = -1

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    def __enter__(self) -> RuntimeDir:
        configured = self._config.supervisor.runtime_dir
        systemd_dir = self._environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
        try:
            if configured or systemd_dir:
                self.path = Path(configured or systemd_dir).resolve()
                self.created = _create_private(self.path)
            else:
                self.path = Path(tempfile.mkdtemp(prefix="hailo-vision-"))
                self.created = True
            self._lock()
            fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self._config.to_json())
        except OSError as exc:
            self._cleanup()
            raise RuntimeDirError(f"{self.path}: cannot prepare the runtime directory ({exc})") from exc
        except RuntimeDirError:
            self._cleanup()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cleanup()

    def _lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeDirError(f"{self.path}: another hailo-vision supervisor is using it") from None
        self._lock_fd = fd

    def _cleanup(self) -> None:
        """Remove what this supervisor made; never touch a directory another one holds."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            self.created = False
        elif self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                self.config_file.unlink()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
