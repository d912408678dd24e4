"""A backend whose CLIP image encoder takes the Hailo-10H's time, for benchmarks on machines without one.

Use with $HAILO_VISION_BACKEND_FACTORY=simulated_clip:create_backend (bench/ on PYTHONPATH). Everything
is the ONNX backend on the demo models except `embed_images`, which sleeps as long as the Hailo-10H
takes for CLIP RN50x4 (model zoo: 63 images/s at batch 1, 157 images/s at batch 8; linear in between)
and returns deterministic unit vectors (a hash of each image seeds them) so that the CPU stays free.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from npu_worker.backend import UnknownModelError
from npu_worker.config import Config
from npu_worker.cpu.onnx_backend import OnnxBackend

BATCH_1_S = 0.016
BATCH_8_S = 0.051
ENCODER_LIMIT_IMAGES_PER_S = 8 / BATCH_8_S  # the encoder's own ceiling, at full batches


def encoder_seconds(images: int) -> float:
    """The simulated device time of one encoder run on `images` images."""
    return BATCH_1_S + (BATCH_8_S - BATCH_1_S) * (images - 1) / 7 if images else 0.0


class SimulatedClipBackend:
    """The ONNX backend with a device-timed, deterministic image encoder."""

    name = "onnx-simulated-clip"

    def __init__(self, config: Config) -> None:
        self.inner = OnnxBackend(config)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    def _dimension(self, model: str) -> int:
        for info in self.inner.describe():
            if info.id == model and info.kind == "clip" and info.embedding_dim:
                return info.embedding_dim
        raise UnknownModelError(f"no CLIP model {model!r} is loaded")

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        dim = self._dimension(model)
        started = time.perf_counter()
        vectors = np.empty((len(images), dim), dtype=np.float32)
        for row, image in enumerate(images):
            rng = np.random.default_rng(zlib.crc32(np.ascontiguousarray(image).data))
            vector = rng.standard_normal(dim)
            vectors[row] = vector / np.linalg.norm(vector)
        time.sleep(max(0.0, encoder_seconds(len(images)) - (time.perf_counter() - started)))
        return vectors


def create_backend(config: Config) -> SimulatedClipBackend:
    return SimulatedClipBackend(config)


if __name__ == "__main__":  # `make bench` runs every file in bench/: show the timing model
    for size in (1, 2, 4, 8):
        seconds = encoder_seconds(size)
        print(f"simulated encoder batch {size}: {seconds * 1000:.1f} ms, {size / seconds:.1f} images/s")
