"""Another process holding the simulated device, like hailo-ollama with a model loaded.

`python -m hailo_double_tools hold [--group UNIQUE|SHARED|<id>] [--vlm HEF | --llm HEF | --kv-cache]`
opens a VDevice (default group UNIQUE, as hailo-ollama uses), optionally loads a VLM/LLM from a
double HEF (or only takes the KV cache, a cheap stand-in for a loaded model), prints
"READY <pid>" and holds until killed or terminated; the kernel frees its locks when it dies.
On failure it prints "FAILED <exception>" and exits with status 2.

HeldDevice runs that command for a test and waits for READY.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from hailo_double_tools.settings import state_dir_in

from npu_worker.config import DEVICE_DIR_ENV

DOUBLE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0


def double_env(base: dict[str, str] | None = None, **settings: str) -> dict[str, str]:
    """An environment whose Python finds the double first, plus HAILO_DOUBLE_* settings.

    It also points hailo-vision's device-holder scan at the simulated device node (locks.py).
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DOUBLE_DIR), env.get("PYTHONPATH", "")) if p)
    env.update(settings)
    env[DEVICE_DIR_ENV] = str(state_dir_in(env) / "dev")
    return env


class HeldDevice:
    """`with HeldDevice(group="UNIQUE", kv_cache=True) as holder: ...`; holder.kill() simulates a crash."""

    def __init__(
        self,
        group: str = "UNIQUE",
        vlm: str | Path | None = None,
        llm: str | Path | None = None,
        kv_cache: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        command = [sys.executable, "-m", "hailo_double_tools", "hold", "--group", group]
        if vlm is not None:
            command += ["--vlm", str(vlm)]
        if llm is not None:
            command += ["--llm", str(llm)]
        if kv_cache:
            command.append("--kv-cache")
        self.process = subprocess.Popen(
            command, env=double_env(env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self._first_line()
        if not line.startswith("READY"):
            self.process.wait(timeout=READY_TIMEOUT_S)
            raise RuntimeError(f"the device holder did not start: {line.strip() or 'no output'}")

    def _first_line(self) -> str:
        assert self.process.stdout is not None
        try:
            return self.process.stdout.readline()
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Terminate (SIGTERM) and wait: the holder lets go of everything."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=READY_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, only the kernel releasing the dead process's locks."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=READY_TIMEOUT_S)

    def __enter__(self) -> HeldDevice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
