"""pyhailort.py's GenAI Python layer: LLMGeneratorCompletion and the bodies LLM and VLM share.

As in HailoRT 5.2.0: prompts that are not str must be a list of dicts and travel as JSON strings,
frames must be a list of arrays, None arguments are not set on the generator params, construction of
a model is not wrapped in ExceptionWrapper (a failure is the raw HailoRTStatusException('<n>')),
everything else is. The public classes with each version's exact signatures are in _genai_versions.
Journal entries (hailo_double_tools.journal) record each generate() call for the tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from hailo_double_tools import journal
from hailo_double_tools.genai_job import Completion
from hailo_double_tools.genai_model import GenAIModel
from hailo_double_tools.generator_params import GeneratorParams
from hailo_double_tools.hef_files import VLM_KIND
from hailo_double_tools.native import FormatOrder, LLMGeneratorCompletionStatus
from hailo_platform.pyhailort._errors import ExceptionWrapper, HailoRTException

SAMPLING_ARGS = (
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "max_generated_tokens",
    "do_sample",
    "seed",
)
_call_ids = itertools.count(1)


class LLMGeneratorCompletion:
    """Streaming result of generate(): a context manager and an iterator of str tokens."""

    def __init__(self, generator_completion: Completion) -> None:
        self._generator_completion: Completion | None = generator_completion

    def release(self) -> None:
        if self._generator_completion is not None:
            self._generator_completion.release()
            self._generator_completion = None

    def __enter__(self) -> LLMGeneratorCompletion:
        return self

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False

    @property
    def generation_status(self) -> LLMGeneratorCompletionStatus:
        with ExceptionWrapper():
            return self._generator_completion.generation_status()  # type: ignore[union-attr]

    def read(self, timeout_ms: int = 10000) -> str:
        with ExceptionWrapper():
            return self._generator_completion.read(timeout_ms)  # type: ignore[union-attr]

    def read_all(self, timeout_ms: int = 10000) -> str:
        with ExceptionWrapper():
            return self._generator_completion.read_all(timeout_ms)  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return self._get_next_token()

    def _get_next_token(self) -> str:
        if self.generation_status != LLMGeneratorCompletionStatus.GENERATING:
            raise StopIteration("Generation complete")
        return self.read()


def convert_to_json_strings(items: Any, item_name: str = "item") -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise HailoRTException(f"{item_name} must be a list of dicts")
    for item in items:
        if not isinstance(item, dict):
            raise HailoRTException(f"{item_name} must be a list of dicts")
    return [json.dumps(item) for item in items]


def fill_generator_params(params: GeneratorParams, sampling: dict[str, Any]) -> GeneratorParams:
    for name in SAMPLING_ARGS:
        if sampling.get(name) is not None:
            setattr(params, name, sampling[name])
    return params


def ensure_frames(frames: Any) -> None:
    if not isinstance(frames, list):
        raise HailoRTException("frames must be a list of numpy arrays")
    for arr in frames:
        if not hasattr(arr, "dtype") or not hasattr(arr, "nbytes"):
            raise HailoRTException("each frame must be a numpy array")


def ensure_videos(videos: Any) -> None:
    if not isinstance(videos, list):
        raise HailoRTException("videos must be a list of lists of numpy arrays")
    for video in videos:
        ensure_frames(video)


def _describe_frames(frames: Any) -> list[dict[str, Any]]:
    return [
        {"shape": list(f.shape), "dtype": str(f.dtype), "c_contiguous": bool(f.flags.c_contiguous)}
        for f in frames
        if isinstance(f, np.ndarray)
    ]


class GenAIModelAPI:
    """Methods every LLM and VLM has, in every mimicked version."""

    _model: GenAIModel | None
    _kind: str

    def _generate(
        self,
        prompt: Any,
        frames: Any,
        videos: Any,
        tools: Any,
        sampling: dict[str, Any],
    ) -> LLMGeneratorCompletion:
        call = journal.record(
            "generate",
            call_id=next(_call_ids),
            kind=self._kind,
            prompt=prompt,
            args={k: v for k, v in sampling.items() if v is not None},
            frames=_describe_frames(frames or []),
            videos=len(videos or []),
            tools=tools,
        )
        try:
            if not isinstance(prompt, str):
                prompt = convert_to_json_strings(prompt, "prompt")
            tools_json = convert_to_json_strings(tools, "tools")
            if self._kind == VLM_KIND:
                ensure_frames(frames)
                ensure_videos(videos)
            with ExceptionWrapper():
                params = fill_generator_params(self._model.create_generator_params(), sampling)  # type: ignore[union-attr]
                completion = self._model.generate(  # type: ignore[union-attr]
                    params, prompt, frames or [], videos or [], tools_json, call
                )
                return LLMGeneratorCompletion(completion)
        except BaseException as exc:
            call["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            journal.flush(call)

    def release(self) -> None:
        if self._model is not None:
            self._model.release()
            self._model = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False

    def __del__(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            model.release()

    def tokenize(self, text: str) -> list[int]:
        with ExceptionWrapper():
            return self._model.tokenize(text)  # type: ignore[union-attr]

    def clear_context(self) -> None:
        with ExceptionWrapper():
            self._model.clear_context()  # type: ignore[union-attr]

    def get_generation_recovery_sequence(self) -> str:
        with ExceptionWrapper():
            return self._model.get_generation_recovery_sequence()  # type: ignore[union-attr]

    def set_generation_recovery_sequence(self, sequence: str) -> None:
        with ExceptionWrapper():
            self._model.set_generation_recovery_sequence(sequence)  # type: ignore[union-attr]

    def prompt_template(self) -> str:
        with ExceptionWrapper():
            return self._model.prompt_template()  # type: ignore[union-attr]

    def set_stop_tokens(self, stop_tokens: list[str]) -> None:
        with ExceptionWrapper():
            self._model.set_stop_tokens(stop_tokens)  # type: ignore[union-attr]

    def get_stop_tokens(self) -> list[str]:
        with ExceptionWrapper():
            return self._model.get_stop_tokens()  # type: ignore[union-attr]


class ContextAPI:
    """Context methods added in HailoRT 5.1.1."""

    _model: GenAIModel | None

    def get_context_usage_size(self) -> int:
        with ExceptionWrapper():
            return self._model.context.usage  # type: ignore[union-attr]

    def max_context_capacity(self) -> int:
        with ExceptionWrapper():
            return self._model.max_context_capacity()  # type: ignore[union-attr]

    def save_context(self) -> bytes:
        with ExceptionWrapper():
            return bytes(self._model.save_context())  # type: ignore[union-attr]

    def load_context(self, context_data: bytes) -> None:
        with ExceptionWrapper():
            self._model.load_context(bytes(context_data))  # type: ignore[union-attr]


class FrameInfoAPI:
    """VLM-only frame metadata."""

    _model: GenAIModel | None

    def input_frame_size(self) -> int:
        with ExceptionWrapper():
            return self._model.frame_size  # type: ignore[union-attr]

    def input_frame_shape(self) -> list[int]:
        with ExceptionWrapper():
            return list(self._model.frame_shape)  # type: ignore[union-attr]

    def input_frame_format_type(self) -> np.dtype:
        with ExceptionWrapper():
            return self._model.frame_dtype  # type: ignore[union-attr]

    def input_frame_format_order(self) -> FormatOrder:
        with ExceptionWrapper():
            return self._model.input_frame_format_order()  # type: ignore[union-attr]
