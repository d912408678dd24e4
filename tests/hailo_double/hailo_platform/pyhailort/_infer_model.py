"""pyhailort.py's HEF, InferModel, ConfiguredInferModel, AsyncInferJob (HailoRT 5.2.0), non-NMS paths.

The Python layer is kept as in the real file (ExceptionWrapper placement, the C-contiguity check in
set_buffer, input()/output() without a name when there is one stream, run() = run_async() + wait(),
the callback receiving completion_info=AsyncInferCompletionInfo); the work is done by the double's
native objects (hailo_double_tools.native_infer).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from hailo_double_tools.hef_files import CLIP_KIND, LLM_KIND, VLM_KIND, load_hef
from hailo_double_tools.native import FormatType, QuantInfo
from hailo_double_tools.native_infer import FormatInfo, NativeBindings, NativeInferModel, NativeInferStream
from hailo_platform.pyhailort._errors import ExceptionWrapper, HailoRTException


class HEF:
    """A (double) HEF file: what InferModel.hef users need."""

    def __init__(self, hef_source: str | bytes) -> None:
        with ExceptionWrapper():
            self._document = load_hef(hef_source, (VLM_KIND, LLM_KIND, CLIP_KIND))
        self._path = hef_source if isinstance(hef_source, str) else None

    @property
    def path(self) -> str | None:
        return self._path

    def get_network_group_names(self) -> list[str]:
        return [str(self._document.get("network_name", self._document["double"]))]


class AsyncInferCompletionInfo:
    """What an async job's callback receives: the job's exception, or None on success."""

    def __init__(self, exception: HailoRTException | None) -> None:
        self._exception = exception

    @property
    def exception(self) -> HailoRTException | None:
        return self._exception


class InferModel:
    class InferStream:
        def __init__(self, infer_stream: NativeInferStream) -> None:
            self._infer_stream = infer_stream

        @property
        def name(self) -> str:
            with ExceptionWrapper():
                return self._infer_stream.name()

        @property
        def shape(self) -> list[int]:
            with ExceptionWrapper():
                return self._infer_stream.shape()

        @property
        def format(self) -> FormatInfo:
            with ExceptionWrapper():
                return self._infer_stream.format()

        def set_format_type(self, type: FormatType) -> None:
            with ExceptionWrapper():
                self._infer_stream.set_format_type(type)

        def set_format_order(self, order: Any) -> None:
            with ExceptionWrapper():
                self._infer_stream.set_format_order(order)

        @property
        def quant_infos(self) -> list[QuantInfo]:
            with ExceptionWrapper():
                return self._infer_stream.get_quant_infos()

        @property
        def is_nms(self) -> bool:
            with ExceptionWrapper():
                return self._infer_stream.is_nms()

    def __init__(self, infer_model: NativeInferModel, hef_path: str | bytes) -> None:
        self._infer_model = infer_model
        self._hef_path = hef_path
        self._hef: HEF | None = None

    @property
    def hef(self) -> HEF:
        if not self._hef:
            with ExceptionWrapper():
                self._hef = HEF(self._hef_path)
        return self._hef

    def set_batch_size(self, batch_size: int) -> None:
        with ExceptionWrapper():
            self._infer_model.set_batch_size(batch_size)

    def configure(self) -> ConfiguredInferModel:
        with ExceptionWrapper():
            configured_infer_model_cpp_obj = self._infer_model.configure()
            return ConfiguredInferModel(configured_infer_model_cpp_obj, self)

    @property
    def input_names(self) -> list[str]:
        with ExceptionWrapper():
            return self._infer_model.get_input_names()

    @property
    def output_names(self) -> list[str]:
        with ExceptionWrapper():
            return self._infer_model.get_output_names()

    @property
    def inputs(self) -> list[InferModel.InferStream]:
        with ExceptionWrapper():
            return [self.InferStream(self._infer_model.input(n)) for n in self._infer_model.get_input_names()]

    @property
    def outputs(self) -> list[InferModel.InferStream]:
        with ExceptionWrapper():
            return [
                self.InferStream(self._infer_model.output(n)) for n in self._infer_model.get_output_names()
            ]

    def input(self, name: str = "") -> InferModel.InferStream:
        with ExceptionWrapper():
            return self.InferStream(self._infer_model.input(name))

    def output(self, name: str = "") -> InferModel.InferStream:
        with ExceptionWrapper():
            return self.InferStream(self._infer_model.output(name))


class ConfiguredInferModel:
    class Bindings:
        class InferStream:
            def __init__(self, infer_stream: Any) -> None:
                self._infer_stream = infer_stream
                self._buffer: np.ndarray | None = None

            @staticmethod
            def _validate_c_contiguous(buffer: np.ndarray) -> None:
                if not buffer.flags.c_contiguous:
                    raise HailoRTException("Buffer must be C_CONTIGUOUS")

            def set_buffer(self, buffer: np.ndarray) -> None:
                with ExceptionWrapper():
                    self._validate_c_contiguous(buffer)
                    self._infer_stream.set_buffer(buffer)
                self._buffer = buffer

            def get_buffer(self, tf_format: bool | None = False) -> np.ndarray | None:
                return self._buffer

        def __init__(self, bindings: NativeBindings, input_names: list[str], output_names: list[str]) -> None:
            self._bindings = bindings
            self._inputs: dict[str, Any] = {}
            self._outputs: dict[str, Any] = {}
            self._input_names = input_names
            self._output_names = output_names

        def input(self, name: str = "") -> ConfiguredInferModel.Bindings.InferStream:
            if name == "" and len(self._input_names) == 1:
                name = self._input_names[0]
            if name not in self._inputs:
                with ExceptionWrapper():
                    self._inputs[name] = self.InferStream(self._bindings.input(name))
            return self._inputs[name]

        def output(self, name: str = "") -> ConfiguredInferModel.Bindings.InferStream:
            if name == "" and len(self._output_names) == 1:
                name = self._output_names[0]
            if name not in self._outputs:
                with ExceptionWrapper():
                    self._outputs[name] = self.InferStream(self._bindings.output(name))
            return self._outputs[name]

        def get(self) -> NativeBindings:
            return self._bindings

    def __init__(self, configured_infer_model: Any, infer_model: InferModel) -> None:
        self._configured_infer_model = configured_infer_model
        self._input_names = infer_model.input_names
        self._output_names = infer_model.output_names
        self._infer_model = infer_model
        self._buffer_guards: deque[list[Any]] = deque()

    def __enter__(self) -> ConfiguredInferModel:
        return self

    def __exit__(self, *args: object) -> None:
        self._configured_infer_model = None

    def activate(self) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.activate()

    def deactivate(self) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.deactivate()

    def create_bindings(
        self,
        input_buffers: dict[str, np.ndarray] | None = None,
        output_buffers: dict[str, np.ndarray] | None = None,
    ) -> ConfiguredInferModel.Bindings:
        with ExceptionWrapper():
            bindings_cpp_obj = self._configured_infer_model.create_bindings()
        bindings = self.Bindings(bindings_cpp_obj, self._input_names, self._output_names)
        for input_name, buffer in (input_buffers or {}).items():
            bindings.input(input_name).set_buffer(buffer)
        for output_name, buffer in (output_buffers or {}).items():
            bindings.output(output_name).set_buffer(buffer)
        return bindings

    def wait_for_async_ready(self, timeout_ms: int = 1000, frames_count: int = 1) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.wait_for_async_ready(
                timedelta(milliseconds=timeout_ms), frames_count
            )

    def run(self, bindings: list[ConfiguredInferModel.Bindings], timeout: int) -> None:
        with ExceptionWrapper():
            job = self.run_async(bindings)
            job.wait(timeout)

    def run_async(
        self, bindings: list[ConfiguredInferModel.Bindings], callback: Callable[..., Any] | None = None
    ) -> AsyncInferJob:
        buffers = []
        for b in bindings:
            for name in self._input_names:
                buffers.append(b.input(name).get_buffer())
            for name in self._output_names:
                buffers.append(b.output(name).get_buffer(None))
        self._buffer_guards.append(buffers)

        def callback_wrapper(error_code: int) -> None:
            cpp_cb_exception = (
                ExceptionWrapper.create_exception_from_status(error_code) if error_code else None
            )
            if callback:
                callback(completion_info=AsyncInferCompletionInfo(cpp_cb_exception))
            self._buffer_guards.popleft()

        with ExceptionWrapper():
            cpp_job = self._configured_infer_model.run_async([b.get() for b in bindings], callback_wrapper)
        return AsyncInferJob(cpp_job)

    def set_scheduler_timeout(self, timeout_ms: int) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.set_scheduler_timeout(timedelta(milliseconds=timeout_ms))

    def set_scheduler_threshold(self, threshold: int) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.set_scheduler_threshold(threshold)

    def set_scheduler_priority(self, priority: int) -> None:
        with ExceptionWrapper():
            self._configured_infer_model.set_scheduler_priority(priority)

    def get_async_queue_size(self) -> int:
        with ExceptionWrapper():
            return self._configured_infer_model.get_async_queue_size()

    def shutdown(self) -> None:
        with ExceptionWrapper():
            return self._configured_infer_model.shutdown()


class AsyncInferJob:
    """An asynchronous inference job; wait() raises HailoRTTimeout when it does not end in time."""

    def __init__(self, job: Any) -> None:
        self._job = job

    def wait(self, timeout_ms: int) -> None:
        with ExceptionWrapper():
            self._job.wait(timedelta(milliseconds=timeout_ms))
