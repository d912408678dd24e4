"""The CLIP image encoder HEF on the shared VDevice through HailoRT's InferModel API.

Images get the same geometric preprocessing as the ONNX runner (the model's preprocessor_config.json:
resize, optional center crop) and go to the HEF as RGB uint8, NHWC: Hailo's compiled CLIP encoders
normalise inside the network. The output is either requested as FLOAT32 before configure() (HailoRT
dequantises) or read quantised and dequantised here with the stream's quant_infos, (q - zp) * scale;
`hailo.clip_output` picks (a HEF compiled with a float output needs neither). Embeddings are
L2-normalised, as the ONNX runner's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npu_worker.backend import ModelLoadError
from npu_worker.cpu.clip_image import ClipImageConfig, resize_uint8
from npu_worker.cpu.clip_runner import l2_normalise
from npu_worker.hailo.device import work_errors
from npu_worker.hailo.failures import Call
from npu_worker.hailo.load_failures import LoadFailures, LoadSite
from npu_worker.hailo.runtime import HailoModules
from npu_worker.images import as_rgb_array


def _dtype_of(hailo: HailoModules, format_type: Any, hef: Path) -> np.dtype:
    formats = hailo.platform.FormatType
    known = {formats.UINT8: np.uint8, formats.UINT16: np.uint16, formats.FLOAT32: np.float32}
    if format_type not in known:
        raise ModelLoadError(f"{hef}: the output format {format_type!r} is not UINT8, UINT16 or FLOAT32")
    return np.dtype(known[format_type])


class HailoClipImageEncoder:
    """One CLIP image encoder HEF, configured for `batch_size` frames per run."""

    def __init__(
        self,
        hailo: HailoModules,
        vdevice: Any,
        hef: Path,
        image_config: ClipImageConfig,
        embedding_dim: int,
        batch_size: int,
        float_output: bool,
        timeout_s: float,
        failures: LoadFailures,
    ) -> None:
        self.hailo = hailo
        self.hef = hef
        self.image_config = image_config
        self.embedding_dim = embedding_dim
        self.batch_size = batch_size
        self.timeout_ms = int(timeout_s * 1000)
        with failures.guard(hailo, LoadSite(Call.CLIP_LOAD, "CLIP image encoder", hef)):
            self.model = vdevice.create_infer_model(str(hef))
            self.model.set_batch_size(batch_size)
            self._check_streams()
            stream = self.model.output()
            if float_output:
                stream.set_format_type(hailo.platform.FormatType.FLOAT32)
            self.output_dtype = _dtype_of(hailo, stream.format.type, hef)
            self.quantised = self.output_dtype.kind in "ui"  # else HailoRT dequantises (or the HEF is float)
            self.zero_point, self.scale = self._quantisation(stream.quant_infos)
            self.configured = self.model.configure()

    def _check_streams(self) -> None:
        """One RGB uint8 input of the preprocessed size, one output of the embedding size."""
        inputs, outputs = list(self.model.input_names), list(self.model.output_names)
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"{self.hef}: a CLIP image encoder HEF has one input and one output; this one has "
                f"inputs {inputs} and outputs {outputs}"
            )
        stream = self.model.input()
        self.input_shape = tuple(int(d) for d in stream.shape)
        expected = (*self.image_config.output_size, 3)
        if self.input_shape != expected:
            raise ModelLoadError(
                f"{self.hef}: takes {self.input_shape} frames but the CLIP model's preprocessor_config.json "
                f"makes {expected}; the HEF and the CLIP directory must be the same model"
            )
        if stream.format.type != self.hailo.platform.FormatType.UINT8:
            raise ModelLoadError(f"{self.hef}: the input is {stream.format.type}, not RGB uint8")
        self.output_shape = tuple(int(d) for d in self.model.output().shape)
        if int(np.prod(self.output_shape)) != self.embedding_dim:
            raise ModelLoadError(
                f"{self.hef}: outputs {self.output_shape} values but the CLIP model's embeddings have "
                f"{self.embedding_dim} dimensions (config.json projection_dim)"
            )

    def _quantisation(self, quant_infos: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Zero points and scales (one, or one per output value) for reading a quantised output."""
        zero = np.array([float(q.qp_zp) for q in quant_infos], dtype=np.float32)
        scale = np.array([float(q.qp_scale) for q in quant_infos], dtype=np.float32)
        if not self.quantised:
            return np.zeros(1, np.float32), np.ones(1, np.float32)
        if zero.size not in (1, self.embedding_dim):
            raise ModelLoadError(
                f"{self.hef}: {zero.size} quantisation parameters for a {self.embedding_dim}-value output; "
                "set hailo.clip_output: float32"
            )
        return zero, scale

    def release(self) -> None:
        self.configured = None
        self.model = None

    def frame(self, image: np.ndarray) -> np.ndarray:
        """The encoder's input: resized (and cropped) like the ONNX runner's, uint8, C-contiguous."""
        return np.ascontiguousarray(resize_uint8(as_rgb_array(image), self.image_config), dtype=np.uint8)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """float32 (N, D) L2-normalised embeddings, at most batch_size frames per device run."""
        if not images:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        raw = np.concatenate(
            [
                self._run([self.frame(image) for image in images[start : start + self.batch_size]])
                for start in range(0, len(images), self.batch_size)
            ]
        )
        if self.quantised:
            raw = (raw.astype(np.float32) - self.zero_point) * self.scale
        return l2_normalise(raw.astype(np.float32, copy=False))

    def _run(self, frames: list[np.ndarray]) -> np.ndarray:
        with work_errors(self.hailo, "CLIP image encoding"):
            bindings = []
            for frame in frames:
                binding = self.configured.create_bindings()
                binding.input().set_buffer(frame)
                binding.output().set_buffer(np.empty(self.output_shape, dtype=self.output_dtype))
                bindings.append(binding)
            self.configured.run(bindings, self.timeout_ms)
            return np.stack([b.output().get_buffer().reshape(-1) for b in bindings])
