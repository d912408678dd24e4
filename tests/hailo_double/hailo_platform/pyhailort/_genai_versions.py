"""LLM, VLM and Speech2Text with the exact signatures of each mimicked HailoRT release.

Read from hailo-ai/hailort's pyhailort.py at v5.0.1, v5.1.0, v5.1.1 and v5.2.0 (v5.0.0 has no GenAI
Python API at all):
- 5.0.1: VLM(vdevice, model_path); LLM(vdevice, model_path, lora_name=""); generate_all has no timeout_ms;
- 5.1.0: optimize_memory_on_device=False on both constructors; generate_all(..., timeout_ms=10000);
  Speech2Text appears; Text2Image and HailoDiffuserSchedulerType exist in this release only
  (v5.1.0 pyhailort.py:4897-4906, 4908-4975; genai/__init__.py exports Text2Image);
- 5.1.1: generate_all's timeout_ms default becomes 600000; get_context_usage_size, max_context_capacity,
  save_context and load_context appear;
- 5.2.0: VLM.generate/generate_all take videos=None after frames; LLM.generate/generate_all take
  tools=None after prompt.
The variant named by HAILO_DOUBLE_VERSION is exported under the real class name.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal

from hailo_double_tools.genai_model import GenAIModel
from hailo_double_tools.hef_files import LLM_KIND, VLM_KIND, load_hef, require_file
from hailo_double_tools.native import HAILO_NOT_FOUND, fail
from hailo_double_tools.settings import active_profile
from hailo_platform.pyhailort._genai import (
    SAMPLING_ARGS,
    ContextAPI,
    FrameInfoAPI,
    GenAIModelAPI,
)

SPEECH2TEXT_KIND = "speech2text"  # no double HEF has it: the double cannot run Whisper
TEXT2IMAGE_KIND = "text2image"  # nor a diffusion model


def _sampling(arguments: dict[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in SAMPLING_ARGS}


def _open(vdevice: Any, model_path: str, kind: str, optimize_memory_on_device: bool) -> GenAIModel:
    native = getattr(vdevice, "_vdevice", None)
    if native is None:
        raise TypeError(
            "create(): incompatible function arguments (the VDevice is released or not a VDevice)"
        )
    return GenAIModel(native.lease, native.params, model_path, kind, optimize_memory_on_device)


class VLM_5_0_1(GenAIModelAPI, FrameInfoAPI):
    _kind = VLM_KIND

    def __init__(self, vdevice, model_path):
        self._model = None
        self._model = _open(vdevice, model_path, VLM_KIND, False)

    def generate(
        self,
        prompt,
        frames,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        return self._generate(prompt, frames, [], None, _sampling(locals()))

    def generate_all(
        self,
        prompt,
        frames,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        with self.generate(
            prompt,
            frames,
            temperature,
            top_p,
            top_k,
            frequency_penalty,
            max_generated_tokens,
            do_sample,
            seed,
        ) as gen_completion:
            return gen_completion.read_all()


class VLM_5_1_0(VLM_5_0_1):
    def __init__(self, vdevice, model_path, optimize_memory_on_device=False):
        self._model = None
        self._model = _open(vdevice, model_path, VLM_KIND, optimize_memory_on_device)

    def generate_all(
        self,
        prompt,
        frames,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=10000,
    ):
        with self.generate(
            prompt,
            frames,
            temperature,
            top_p,
            top_k,
            frequency_penalty,
            max_generated_tokens,
            do_sample,
            seed,
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


class VLM_5_1_1(ContextAPI, VLM_5_1_0):
    def generate_all(
        self,
        prompt,
        frames,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=600000,
    ):
        with self.generate(
            prompt,
            frames,
            temperature,
            top_p,
            top_k,
            frequency_penalty,
            max_generated_tokens,
            do_sample,
            seed,
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


class VLM_5_2_0(VLM_5_1_1):
    def generate(
        self,
        prompt,
        frames,
        videos=None,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        return self._generate(prompt, frames, [] if videos is None else videos, None, _sampling(locals()))

    def generate_all(
        self,
        prompt,
        frames,
        videos=None,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=600000,
    ):
        if videos is None:
            videos = []
        with self.generate(
            prompt,
            frames,
            videos,
            temperature,
            top_p,
            top_k,
            frequency_penalty,
            max_generated_tokens,
            do_sample,
            seed,
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


def _open_llm(vdevice: Any, model_path: str, lora_name: str, optimize_memory_on_device: bool) -> GenAIModel:
    if lora_name:
        fail(HAILO_NOT_FOUND, f"LoRA {lora_name!r} not found in the HEF (double HEFs have no LoRA)")
    return _open(vdevice, model_path, LLM_KIND, optimize_memory_on_device)


class LLM_5_0_1(GenAIModelAPI):
    _kind = LLM_KIND

    def __init__(self, vdevice, model_path, lora_name=""):
        self._model = None
        self._model = _open_llm(vdevice, model_path, lora_name, False)

    def generate(
        self,
        prompt,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        return self._generate(prompt, None, None, None, _sampling(locals()))

    def generate_all(
        self,
        prompt,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        with self.generate(
            prompt, temperature, top_p, top_k, frequency_penalty, max_generated_tokens, do_sample, seed
        ) as gen_completion:
            return gen_completion.read_all()


class LLM_5_1_0(LLM_5_0_1):
    def __init__(self, vdevice, model_path, lora_name="", optimize_memory_on_device=False):
        self._model = None
        self._model = _open_llm(vdevice, model_path, lora_name, optimize_memory_on_device)

    def generate_all(
        self,
        prompt,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=10000,
    ):
        with self.generate(
            prompt, temperature, top_p, top_k, frequency_penalty, max_generated_tokens, do_sample, seed
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


class LLM_5_1_1(ContextAPI, LLM_5_1_0):
    def generate_all(
        self,
        prompt,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=600000,
    ):
        with self.generate(
            prompt, temperature, top_p, top_k, frequency_penalty, max_generated_tokens, do_sample, seed
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


class LLM_5_2_0(LLM_5_1_1):
    def generate(
        self,
        prompt,
        tools=None,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
    ):
        return self._generate(prompt, None, None, tools, _sampling(locals()))

    def generate_all(
        self,
        prompt,
        tools=None,
        temperature=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        max_generated_tokens=None,
        do_sample=None,
        seed=None,
        timeout_ms=600000,
    ):
        with self.generate(
            prompt, tools, temperature, top_p, top_k, frequency_penalty, max_generated_tokens, do_sample, seed
        ) as gen_completion:
            return gen_completion.read_all(timeout_ms)


class Speech2TextTask(Enum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class Speech2Text:
    """Exists with the real constructor; creating one always fails (no double HEF holds a Whisper)."""

    def __init__(self, vdevice, model_path):
        self._vdevice = vdevice
        self._speech2text = load_hef(model_path, (SPEECH2TEXT_KIND,))

    def release(self) -> None:
        self._speech2text = None

    def __enter__(self) -> Speech2Text:
        return self

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False


class HailoDiffuserSchedulerType(Enum):
    """Diffusion scheduler types for Text2Image (values of _pyhailort's enum, text2image.hpp v5.1.0:30-34)."""

    EULER_DISCRETE = 0
    DDIM = 1


class Text2Image:
    """HailoRT 5.1.0's constructor; creating one always fails (no double HEF holds a diffusion model).

    Like the real one (v5.1.0 pyhailort.py:4946-4973) it is not wrapped in ExceptionWrapper: a missing
    HEF is the raw status 13 (text2image.cpp validate_hef_path, v5.1.0:31-35), any other file 92 or 26.
    """

    def __init__(
        self,
        vdevice,
        denoise_hef,
        text_encoder_hef,
        image_decoder_hef,
        scheduler_type=HailoDiffuserSchedulerType.EULER_DISCRETE,
    ):
        for hef in (denoise_hef, text_encoder_hef, image_decoder_hef):
            require_file(hef)
        self._text2image = load_hef(denoise_hef, (TEXT2IMAGE_KIND,))

    def release(self) -> None:
        self._text2image = None

    def __enter__(self) -> Text2Image:
        return self

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False


def _export(name: str, variants: Mapping[str, type]) -> type:
    cls = variants[active_profile().version]
    cls.__name__ = cls.__qualname__ = name
    return cls


_VLMS = {"5.0.1": VLM_5_0_1, "5.1.0": VLM_5_1_0, "5.1.1": VLM_5_1_1, "5.2.0": VLM_5_2_0}
_LLMS = {"5.0.1": LLM_5_0_1, "5.1.0": LLM_5_1_0, "5.1.1": LLM_5_1_1, "5.2.0": LLM_5_2_0}
GENAI_EXPORTS: dict[str, Any] = {}  # what hailo_platform.genai exports (pyhailort.py has them too)
PYHAILORT_EXPORTS: dict[str, Any] = {}  # what only hailo_platform.pyhailort.pyhailort has
if active_profile().has_genai:
    GENAI_EXPORTS["VLM"] = _export("VLM", _VLMS)
    GENAI_EXPORTS["LLM"] = _export("LLM", _LLMS)
    if active_profile().has_text2image:
        GENAI_EXPORTS["Text2Image"] = Text2Image
        PYHAILORT_EXPORTS["HailoDiffuserSchedulerType"] = HailoDiffuserSchedulerType
    if active_profile().has_speech2text:
        GENAI_EXPORTS.update(Speech2Text=Speech2Text, Speech2TextTask=Speech2TextTask)
