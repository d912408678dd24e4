"""Native InferModel / ConfiguredInferModel for the CLIP image-encoder double HEF (HailoRT's async API).

Mirrors libhailort's behaviour where the Python layer relies on it: a stream found by name, or with
no name when there is one (else status 61 HAILO_NOT_FOUND); formats fixed at configure(); a
binding without a buffer fails with 61 and a buffer of the wrong byte size with status 6 when the
job is launched (ConfiguredInferModelImpl::validate_bindings); buffers are raw bytes (an output
buffer of the right size is filled whatever its dtype, an input's bytes are read as uint8 NHWC or
float32 NHWC, whatever its shape); FLOAT32 output is HailoRT's host-side dequantisation of the very
codes the device produced; a job runs on a worker thread and calls its callback with a status.

An output is computed in the HEF's width (uint8, or uint16 for a 16-bit HEF) and converted the way
libhailort's output transformation allows (transform.cpp v5.2.0:51-62 should_quantize_by_type,
869-925 quantize_stream): to FLOAT32 by dequantising, uint8 codes to UINT16 by a plain type-cast
(HailoRT logs a warning), and never 16-bit codes to UINT8: configure() refuses that with status 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from hailo_double_tools import journal, settings
from hailo_double_tools.clip_engine import ClipEncoder, dequantize, quantize
from hailo_double_tools.hef_files import CLIP_KIND, load_hef
from hailo_double_tools.locks import DeviceLease
from hailo_double_tools.native import (
    HAILO_INVALID_ARGUMENT,
    HAILO_INVALID_HEF,
    HAILO_INVALID_OPERATION,
    HAILO_NOT_FOUND,
    HAILO_TIMEOUT,
    STATUS_EXCEPTIONS,
    FormatOrder,
    FormatType,
    QuantInfo,
    fail,
    log,
)

from npu_worker.backend import ModelLoadError

INPUT_TYPES = (FormatType.UINT8, FormatType.FLOAT32)
ITEM_SIZES = {FormatType.UINT8: 1, FormatType.UINT16: 2, FormatType.FLOAT32: 4}
NUMPY_TYPES = {FormatType.UINT8: np.uint8, FormatType.UINT16: np.uint16, FormatType.FLOAT32: np.float32}


class FormatInfo:
    """hailo_format_t: type, order and flags of a stream."""

    def __init__(self, type: FormatType, order: FormatOrder) -> None:
        self.type = type
        self.order = order
        self.flags = 0


class NativeInferStream:
    def __init__(
        self, name: str, shape: list[int], order: FormatOrder, default: FormatType, quant: QuantInfo
    ):
        self._name, self._shape, self._order = name, list(shape), order
        self._type, self._default, self._quant = default, default, quant

    def name(self) -> str:
        return self._name

    def shape(self) -> list[int]:
        return list(self._shape)

    def format(self) -> FormatInfo:
        return FormatInfo(self._type, self._order)

    def set_format_type(self, format_type: FormatType) -> None:
        if not isinstance(format_type, FormatType):
            raise TypeError(f"set_format_type(): incompatible function arguments: {format_type!r}")
        self._type = self._default if format_type is FormatType.AUTO else format_type

    def set_format_order(self, order: FormatOrder) -> None:
        if order not in (FormatOrder.AUTO, self._order):
            fail(
                HAILO_INVALID_OPERATION, f"{self._name}: format order {order} is not supported by the double"
            )

    def get_quant_infos(self) -> list[QuantInfo]:
        return [self._quant]

    def is_nms(self) -> bool:
        return False

    def frame_size(self) -> int:
        return int(np.prod(self._shape)) * ITEM_SIZES[self._type]


def _find(streams: dict[str, NativeInferStream], name: str, what: str) -> NativeInferStream:
    if name == "" and len(streams) == 1:
        return next(iter(streams.values()))
    if name not in streams:
        fail(HAILO_NOT_FOUND, f"{what} {name!r} not found (the model has {list(streams)})")
    return streams[name]


class NativeInferModel:
    def __init__(self, lease: DeviceLease, source: str | bytes, name: str) -> None:
        self.hef = load_hef(source, (CLIP_KIND,))
        self.source = source if isinstance(source, str) else "<buffer>"
        try:
            self.encoder = ClipEncoder(Path(self.hef["vision_onnx"]), Path(self.hef["preprocessor_config"]))
        except ModelLoadError as exc:
            fail(HAILO_INVALID_HEF, f"Failed to create infer model: {exc}")
        spec_in, spec_out = self.hef["input"], self.hef["output"]
        self.out_bits = int(spec_out.get("bits", 8))
        out_default = FormatType.FLOAT32
        if spec_out["quantized"]:
            out_default = FormatType.UINT16 if self.out_bits == 16 else FormatType.UINT8
        self.inputs = {
            spec_in["name"]: NativeInferStream(
                spec_in["name"], spec_in["shape"], FormatOrder.NHWC, FormatType.UINT8, QuantInfo(0.0, 1.0)
            )
        }
        self.outputs = {
            spec_out["name"]: NativeInferStream(
                spec_out["name"],
                [spec_out["dim"]],
                FormatOrder.NC,
                out_default,
                QuantInfo(spec_out["qp_zp"], spec_out["qp_scale"], -1.0, 1.0),
            )
        }
        self.batch_size = 0
        self.lease = lease.retain()

    def __del__(self) -> None:
        lease = getattr(self, "lease", None)
        if lease is not None:
            lease.release()

    def input(self, name: str = "") -> NativeInferStream:
        return _find(self.inputs, name, "Input")

    def output(self, name: str = "") -> NativeInferStream:
        return _find(self.outputs, name, "Output")

    def get_input_names(self) -> list[str]:
        return list(self.inputs)

    def get_output_names(self) -> list[str]:
        return list(self.outputs)

    def set_batch_size(self, batch_size: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 <= batch_size < 2**16:
            raise TypeError(f"set_batch_size(): incompatible function arguments: {batch_size!r}")
        self.batch_size = batch_size

    def configure(self) -> NativeConfiguredInferModel:
        for stream in self.inputs.values():
            if stream.format().type not in INPUT_TYPES:
                fail(
                    HAILO_INVALID_OPERATION,
                    f"{stream.name()}: format type {stream.format().type} unsupported",
                )
        for stream in self.outputs.values():
            if stream.format().type is FormatType.UINT8 and self.out_bits == 16:
                fail(
                    HAILO_INVALID_ARGUMENT,
                    "The model compiled for type UINT16, while the dst type is UINT8. Output de-quantization "
                    "is impossible to this dst type",
                )
            if stream.format().type is FormatType.UINT16 and self.out_bits == 8:
                log.warning(
                    "The model compiled for type UINT8, while the dst type is UINT16. libhailort will "
                    "type-cast every value which might reduce performance. Consider recompiling the model."
                )
        return NativeConfiguredInferModel(self)


class NativeBindingStream:
    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def set_buffer(self, buffer: np.ndarray) -> None:
        self.buffer = buffer


class NativeBindings:
    def __init__(self, input_names: list[str], output_names: list[str]) -> None:
        self.streams = {name: NativeBindingStream() for name in (*input_names, *output_names)}

    def _stream(self, name: str) -> NativeBindingStream:
        if name not in self.streams:
            fail(HAILO_NOT_FOUND, f"Stream {name!r} not found in the bindings")
        return self.streams[name]

    def input(self, name: str) -> NativeBindingStream:
        return self._stream(name)

    def output(self, name: str) -> NativeBindingStream:
        return self._stream(name)


class NativeAsyncJob:
    def __init__(self, future: Future[None]) -> None:
        self.future = future

    def wait(self, timeout: timedelta) -> None:
        try:
            self.future.result(timeout=timeout.total_seconds())
        except FutureTimeout:
            fail(HAILO_TIMEOUT, "Waiting for async job to finish has failed with timeout")


class NativeConfiguredInferModel:
    """Formats are frozen here: changing the InferModel's streams afterwards changes nothing."""

    def __init__(self, model: NativeInferModel) -> None:
        self.model = model
        self.in_name, self.out_name = model.get_input_names()[0], model.get_output_names()[0]
        self.in_type = model.inputs[self.in_name].format().type
        self.out_type = model.outputs[self.out_name].format().type
        self.in_size = model.inputs[self.in_name].frame_size()
        self.out_size = model.outputs[self.out_name].frame_size()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hailo-double-infer")

    def __del__(self) -> None:
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.shutdown(wait=False)

    def create_bindings(self) -> NativeBindings:
        return NativeBindings([self.in_name], [self.out_name])

    @staticmethod
    def _checked(buffer: np.ndarray | None, name: str, size: int) -> np.ndarray:
        if buffer is None:
            fail(HAILO_NOT_FOUND, f"Couldnt find buffer for '{name}'")
        if buffer.nbytes != size:
            fail(
                HAILO_INVALID_OPERATION,
                f"Buffer size {buffer.nbytes} is different than expected {size} for '{name}'",
            )
        return buffer

    def _validated(self, bindings: list[NativeBindings]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (
                self._checked(b.streams[self.in_name].buffer, self.in_name, self.in_size),
                self._checked(b.streams[self.out_name].buffer, self.out_name, self.out_size),
            )
            for b in bindings
        ]

    def _frames(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        shape = self.model.inputs[self.in_name].shape()
        dtype = np.float32 if self.in_type is FormatType.FLOAT32 else np.uint8
        frames = np.stack([np.frombuffer(frame.tobytes(), dtype=dtype).reshape(shape) for frame, _ in pairs])
        return np.clip(np.rint(frames), 0, 255).astype(np.uint8) if dtype == np.float32 else frames

    def _infer(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        quant = self.model.outputs[self.out_name].get_quant_infos()[0]
        embeddings = self.model.encoder.embed(self._frames(pairs))
        codes = quantize(embeddings, quant.qp_zp, quant.qp_scale, self.model.out_bits)
        if self.out_type is FormatType.FLOAT32:
            values = dequantize(codes, quant.qp_zp, quant.qp_scale)
        else:
            values = codes.astype(NUMPY_TYPES[self.out_type])
        for (_, out), row in zip(pairs, values, strict=True):
            out.reshape(-1).view(np.uint8)[:] = np.frombuffer(row.tobytes(), dtype=np.uint8)

    def run_async(self, bindings: list[NativeBindings], callback: Callable[[int], Any]) -> NativeAsyncJob:
        pairs = self._validated(bindings)
        journal.log("infer", hef=self.model.source, batch=len(pairs), output_type=self.out_type.name)

        def work() -> None:
            status = 0
            time.sleep(settings.infer_delay_s())
            try:
                self._infer(pairs)
            except STATUS_EXCEPTIONS as exc:
                status = int(exc.args[0])
            callback(status)

        return NativeAsyncJob(self.executor.submit(work))

    def wait_for_async_ready(self, timeout: timedelta, frames_count: int) -> None:
        return None

    def get_async_queue_size(self) -> int:
        return 4

    def activate(self) -> None:
        fail(HAILO_INVALID_OPERATION, "activate() is invalid while the scheduler is enabled")

    def deactivate(self) -> None:
        fail(HAILO_INVALID_OPERATION, "deactivate() is invalid while the scheduler is enabled")

    def set_scheduler_timeout(self, timeout: timedelta) -> None:
        return None

    def set_scheduler_threshold(self, threshold: int) -> None:
        return None

    def set_scheduler_priority(self, priority: int) -> None:
        return None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)
