"""Run the real service (`hailo-vision serve`: supervisor, API, NPU worker) on a loopback port for tests."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import psutil
import shapes_world
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HAILO_VISION = Path(sys.executable).parent / "hailo-vision"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"condition not met within {timeout_s} s")


def image_data_url(seed: int = 0, n_shapes: int = 1, fmt: str = "PNG", **scene: Any) -> tuple[str, Any]:
    """A fresh shapes-world picture as a data URL, with its scene (the right answers)."""
    world = shapes_world.random_scene(np.random.default_rng(seed), n_shapes=n_shapes, **scene)
    data = shapes_world.encode(shapes_world.render(world), fmt)
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}", world


def clip_frames(seed: int, kind: str) -> tuple[list[np.ndarray], str]:
    """A fresh shapes-world clip (RGB frames) of a kind in shapes_world.CLIP_QUESTIONS, and its answer."""
    scenes, answer = shapes_world.random_clip(np.random.default_rng(seed), kind)
    return [np.asarray(shapes_world.render(scene)) for scene in scenes], answer


def clip_data_urls(seed: int, kind: str) -> tuple[list[str], str]:
    """The clip's frames as PNG data URLs, and its answer."""
    frames, answer = clip_frames(seed, kind)
    urls = [
        "data:image/png;base64," + base64.b64encode(shapes_world.encode(Image.fromarray(f), "PNG")).decode()
        for f in frames
    ]
    return urls, answer


def video_file(frames: list[np.ndarray], fps: float = 2.0, container: str = "mp4") -> bytes:
    """The frames as a video file (MPEG-4 part 2 in MP4 by default), encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt, stream.bit_rate = "yuv420p", 4_000_000
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


class Service:
    """One `hailo-vision serve` process tree with its own config file, port and runtime directory."""

    def __init__(
        self,
        tmp: Path,
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        wrap: list[str] | None = None,
    ):
        """`wrap`: a command that runs the service (e.g. in its own mount namespace), "$@" last."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        settings: dict[str, Any] = {
            "model": {"path": str(ROOT / "models/demo/qwen2-vl-demo"), "warmup": False},
            "clip": {"path": str(ROOT / "models/demo/clip-demo")},
            "worker": {"heartbeat_interval_s": 0.2, "heartbeat_timeout_s": 2.0},
            "supervisor": {"restart_initial_s": 0.2, "runtime_dir": str(tmp / "run")},
            "scheduler": {"ollama_url": ""},  # no hailo-ollama unless a test starts its fake
        }
        for section, values in (config or {}).items():
            if isinstance(values, dict):
                settings.setdefault(section, {}).update(values)
            else:
                settings[section] = values
        settings.setdefault("api", {})["port"] = self.port
        (tmp / "run").mkdir(mode=0o700, exist_ok=True)
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.log_path = tmp / "service.log"
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("HAILO_VISION_", "NOTIFY_SOCKET"))
        }
        environ.update(env or {})
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*(wrap or []), str(HAILO_VISION), "serve", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environ,
        )
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def wait_ready(self, timeout_s: float = 60.0, headers: dict[str, str] | None = None) -> Service:
        """Until /health/ready answers 200 (`headers`: an API key, where the probes are closed)."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited {self.process.returncode}:\n{self.logs()}")
            try:
                return self.http.get("/health/ready", headers=headers).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout_s)
        return self

    def child_pid(self, module: str) -> int:
        """The pid of the child running `module` (api.main or npu_worker.main)."""
        for child in psutil.Process(self.process.pid).children():
            if module in " ".join(child.cmdline()):
                return int(child.pid)
        raise LookupError(f"no child runs {module}")

    def kill_worker(self) -> int:
        pid = self.child_pid("npu_worker.main")
        os.kill(pid, signal.SIGKILL)
        return pid

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.http.close()
        self._log.close()
        return int(self.process.returncode)
