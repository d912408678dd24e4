"""What the CLIP image-encoder "HEF" computes: uint8 NHWC frames in, L2-normalised embeddings out.

A real Hailo HEF folds the input normalisation into the network and quantises its output; the double
normalises with the demo CLIP's own preprocessing (the product's to_pixel_values), runs
onnx/vision_model.onnx on ONNX Runtime, L2-normalises (hailo-apps' CLIP image encoders output
L2-normalised embeddings), and quantises to the HEF's output width (8 bits, the usual, or 16) as
q = clip(round(x / qp_scale + qp_zp), 0, 2**bits - 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hailo_double_tools.settings import onnx_threads

from npu_worker.cpu.clip_image import ClipImageConfig, to_pixel_values
from npu_worker.cpu.clip_runner import l2_normalise
from npu_worker.cpu.model_files import open_session

CALIBRATION_MARGIN = 1.25


def _image_config(preprocessor: Path) -> ClipImageConfig:
    return ClipImageConfig.from_json(json.loads(preprocessor.read_text(encoding="utf-8")), preprocessor)


class ClipEncoder:
    """The demo CLIP vision tower behind one configured CLIP double HEF."""

    def __init__(self, onnx_path: Path, preprocessor: Path) -> None:
        self.config = _image_config(preprocessor)
        self.session = open_session(
            onnx_path.parent, onnx_path.name, ("pixel_values",), ("image_embeds",), onnx_threads()
        )

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """float32 (N, D) unit vectors for uint8 frames (N, H, W, 3) of the HEF's input shape."""
        pixels = np.stack([to_pixel_values(frame, self.config) for frame in frames])
        (embeds,) = self.session.run(["image_embeds"], {"pixel_values": pixels})
        return l2_normalise(embeds)


def quantize(values: np.ndarray, qp_zp: float, qp_scale: float, bits: int = 8) -> np.ndarray:
    """uint8 / uint16 codes the device would output for float values (saturating, like the hardware)."""
    dtype = np.uint16 if bits == 16 else np.uint8
    return np.clip(np.rint(values / qp_scale + qp_zp), 0, 2**bits - 1).astype(dtype)


def dequantize(codes: np.ndarray, qp_zp: float, qp_scale: float) -> np.ndarray:
    """HailoRT's host-side dequantisation: (q - qp_zp) * qp_scale, as float32."""
    return ((codes.astype(np.float32) - np.float32(qp_zp)) * np.float32(qp_scale)).astype(np.float32)


def encoder_geometry(onnx_path: Path, preprocessor: Path) -> tuple[tuple[int, int], int]:
    """((height, width), embedding dimension) of a CLIP export."""
    encoder = ClipEncoder(onnx_path, preprocessor)
    dim = encoder.session.get_outputs()[0].shape[-1]
    return encoder.config.output_size, int(dim)


def calibration_frames(height: int, width: int) -> np.ndarray:
    """Deterministic synthetic frames: flat colours, gradients and noise (a stand-in calibration set)."""
    rng = np.random.default_rng(0)
    flats = [np.full((height, width, 3), c, np.uint8) for c in ((0, 0, 0), (255, 255, 255), (200, 30, 30))]
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    gradient = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
    noise = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    return np.stack([*flats, gradient, *noise])


def calibrate_scale(onnx_path: Path, preprocessor: Path, qp_zp: float, bits: int = 8) -> float:
    """A qp_scale whose code range around qp_zp covers the calibration outputs with a margin."""
    encoder = ClipEncoder(onnx_path, preprocessor)
    height, width = encoder.config.output_size
    peak = float(np.abs(encoder.embed(calibration_frames(height, width))).max()) * CALIBRATION_MARGIN
    room = min(qp_zp, 2.0**bits - 1 - qp_zp)
    return min(peak, 1.0) / room
