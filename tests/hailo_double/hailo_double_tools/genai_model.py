"""A loaded GenAI model on the simulated device: the native VLMWrapper / LLMWrapper of the bindings.

Computes for real with the demo Qwen2-VL through the product's own pieces (Qwen2VLRunner for the
weights, vision encoder and embeddings, KVDecoder, M-RoPE, the image grid rules), with the device's
own rules on top (sources: HailoRT 5.2.0 vlm.cpp, minja_wrapper.cpp, llm_server.cpp, vlm_server.cpp;
what may refuse a new model, per release, is in genai_admission.py):

- the chat template (from the HEF) is applied on the host to JSON messages; on a fresh context the
  whole conversation is rendered, afterwards only the new messages (rendered after a placeholder turn
  whose text is then cut off), and a system message is refused there with status 6;
- frames are checked when generate() is called (wrong byte size: status 6); the double is stricter
  than the device and also refuses a frame of the right size but wrong shape, dtype or memory order,
  which the device would silently read as garbage;
- the count of <|image_pad|> placeholders is checked against the frames on the device, during the
  prefill, so a mismatch surfaces at the first read (status 6);
- the context persists across generate() calls until clear_context(); a VLM drops the tokens that
  ended the previous answer (VLM generate requests carry no prefix tokens), an LLM feeds them first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from hailo_double_tools import journal
from hailo_double_tools.genai_admission import admit_after_hef, admit_before_hef
from hailo_double_tools.genai_context import DeviceContext
from hailo_double_tools.genai_job import Completion, GenerationJob
from hailo_double_tools.generator_params import GeneratorParams
from hailo_double_tools.hef_files import VLM_KIND, load_hef
from hailo_double_tools.locks import DeviceLease
from hailo_double_tools.native import (
    HAILO_INTERNAL_FAILURE,
    HAILO_INVALID_ARGUMENT,
    HAILO_INVALID_HEF,
    HAILO_INVALID_OPERATION,
    STATUS_EXCEPTIONS,
    FormatOrder,
    VDeviceParams,
    fail,
)
from hailo_double_tools.settings import load_delay_s, onnx_threads, prefill_delay_s

from npu_worker.backend import ModelLoadError
from npu_worker.chat_template import ChatTemplate
from npu_worker.cpu.mrope import rope_index
from npu_worker.cpu.qwen2vl_image import grid_thw, video_grid_thw
from npu_worker.cpu.qwen2vl_prompt import PromptTokens
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

log = logging.getLogger("hailort")
PLACEHOLDER_TURN = {"role": "TMP", "content": "TMP"}
BUSY = "Make sure there is no other generation in progress"


class GenAIModel:
    def __init__(
        self, lease: DeviceLease, params: VDeviceParams, hef_path: str, kind: str, optimize_memory: bool
    ) -> None:
        early = admit_before_hef(params, hef_path, kind, optimize_memory)
        try:
            self.hef = load_hef(hef_path, (kind,))
        except STATUS_EXCEPTIONS:
            if early is not None:
                early.release()
            raise
        self.kind = kind
        self.kv_cache = admit_after_hef(early, hef_path, kind, optimize_memory)
        try:
            self.runner = Qwen2VLRunner(self.hef["model_dir"], threads=onnx_threads())
            config = self.hef["hailo_config"]
            self.template = ChatTemplate(config["chat_template"], {"bos_token": "", "eos_token": ""})
        except (ModelLoadError, KeyError) as exc:
            self.kv_cache.release()
            fail(HAILO_INVALID_HEF, f"Failed to create {kind}: {exc}")
        time.sleep(load_delay_s())
        self.lease = lease.retain()
        self.image_pad = int(config["image_pad"]) if config.get("image_pad") is not None else None
        # vlm_server.cpp v5.2.0:59-61: "<|video_pad|>" (151656) unless the HEF's config names another
        self.video_pad = int(config.get("video_pad") or 151656)
        self.encoder_inputs = int(self.hef.get("frame_encoder_inputs", 1))
        self.stop_sequences: list[list[int]] = [[int(t)] for t in config["stop_token_id"]]
        self.recovery_tokens: list[int] = [int(config["eos_token_id"])]
        self.frame_shape = tuple(self.hef.get("input_frame_shape", ()))
        self.frame_dtype = np.dtype(np.uint8)
        self.context = DeviceContext(self.runner.decoder, model_key=f"{kind}:{Path(hef_path).resolve()}")
        self._is_first_prompt = True
        self._system_prompt = self._render([PLACEHOLDER_TURN], add_generation_prompt=False)
        self._job: GenerationJob | None = None
        self._lock = threading.Lock()
        self.released = False
        journal.log("model_created", kind=kind, hef=str(hef_path), optimize_memory_on_device=optimize_memory)

    # ----- host side: parameters, template, frames -------------------------------------------------

    def create_generator_params(self) -> GeneratorParams:
        return GeneratorParams.from_defaults(self.hef["generation_defaults"])

    def _render(
        self, messages: list[Any], add_generation_prompt: bool, tools: list[Any] | None = None
    ) -> str:
        extra = {"tools": tools} if tools else {}
        try:
            return self.template.template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                **extra,
                **self.template.special_tokens,
            )
        except (jinja2.exceptions.TemplateError, TypeError, AttributeError) as exc:
            fail(HAILO_INTERNAL_FAILURE, f"Failed to render prompt from JSON strings: {exc}")

    def render(self, messages_json: list[str], tools_json: list[str]) -> str:
        """PromptTemplateHandler::render: the whole conversation first, then only the new turns."""
        messages = [json.loads(m) for m in messages_json]
        tools = [json.loads(t) for t in tools_json]
        if self._is_first_prompt:
            self._is_first_prompt = False
            return self._render(messages, True, tools)
        if tools:
            fail(HAILO_INVALID_OPERATION, "Tools can only be provided on the first prompt of the context")
        if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
            fail(HAILO_INVALID_OPERATION, "System role messages can only be provided on the first prompt")
        return self._render([PLACEHOLDER_TURN, *messages], True)[len(self._system_prompt) :]

    @property
    def frame_size(self) -> int:
        return int(np.prod(self.frame_shape)) * self.frame_dtype.itemsize

    def _check_frames(self, frames: list[np.ndarray], videos: list[list[np.ndarray]]) -> None:
        if any(videos) and self.encoder_inputs != 2:  # vlm_server.cpp v5.2.0:343-347
            fail(
                HAILO_INVALID_OPERATION, "Video frames were passed but the model's encoder has a single input"
            )
        for index, frame in enumerate([*frames, *(f for video in videos for f in video)]):
            if frame.nbytes != self.frame_size:
                fail(
                    HAILO_INVALID_OPERATION,
                    f"Input buffer size {frame.nbytes} is different than expected {self.frame_size} "
                    f"for frame {index}",
                )
            if tuple(frame.shape) != self.frame_shape or frame.dtype != self.frame_dtype:
                fail(
                    HAILO_INVALID_OPERATION,
                    f"hailo double: frame {index} is {frame.dtype}{list(frame.shape)}, expected "
                    f"{self.frame_dtype}{list(self.frame_shape)} (the device would misread its bytes)",
                )
            if not frame.flags.c_contiguous:
                fail(HAILO_INVALID_OPERATION, f"hailo double: frame {index} is not C-contiguous")

    def generate(
        self,
        params: GeneratorParams,
        prompt: str | list[str],
        frames: list[np.ndarray],
        videos: list[list[np.ndarray]],
        tools: list[str],
        call: dict[str, Any],
    ) -> Completion:
        params.validate()
        if isinstance(prompt, str):
            if not prompt:
                fail(HAILO_INVALID_ARGUMENT, "Prompt cannot be empty")
            text = prompt
        else:
            if not prompt:
                fail(HAILO_INVALID_ARGUMENT, "Messages cannot be empty")
            text = self.render(prompt, tools)
        frames = [np.asarray(f) for f in frames]
        self._check_frames(frames, videos)
        with self._lock:
            if self._job is not None and not self._job.device_done.is_set():
                fail(HAILO_INVALID_OPERATION, f"Failed to generate. {BUSY}")
            call.update(rendered_prompt=text, params=params.as_dict())
            videos = [[np.asarray(f) for f in video] for video in videos]
            self._job = GenerationJob(self, text, frames, params, videos)
        completion = Completion(self._job, call)
        if params.max_generated_tokens == 0:  # the library reads the single empty answer itself
            completion.read(60_000)
        return completion

    # ----- device side: prefill and decode -------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return list(self.runner.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, tokens: list[int]) -> str:
        return str(self.runner.tokenizer.decode(tokens, skip_special_tokens=False))

    def prefill(self, text: str, frames: list[np.ndarray], videos: list[list[np.ndarray]]) -> np.ndarray:
        """The prompt's embeddings (frames and videos through the encoder, a video's frames in pairs, an
        odd last one paired with itself: vlm_server.cpp v5.2.0:349-390) fed after the context."""
        context = self.context
        prefix = context.pending if self.kind != VLM_KIND else []
        context.pending = []
        ids = np.asarray(prefix + self.tokenize(text), dtype=np.int64)
        image_config = self.runner.image_config
        grids = np.asarray([grid_thw(*f.shape[:2], image_config) for f in frames], np.int64).reshape(-1, 3)
        video_grids = np.asarray(
            [video_grid_thw(len(v), *v[0].shape[:2], image_config) for v in videos if v], np.int64
        ).reshape(-1, 3)
        repeats = np.ones(ids.size, dtype=np.int64)
        for pad, what, found, made in (
            (self.image_pad, "image-pad", grids, "frames"),
            (self.video_pad, "video-pad", video_grids, "video"),
        ):
            slots = ids == pad if pad is not None else np.zeros(ids.size, bool)
            if int(slots.sum()) != len(found):  # vlm_server.cpp v5.2.0:474, 482
                fail(
                    HAILO_INVALID_OPERATION,
                    f"Number of {what} embeddings from prompt ({int(slots.sum())}) does not match the number "
                    f"of {made} embeddings generated by the encoder ({len(found)})",
                )
            repeats[slots] = found.prod(axis=1) // image_config.merge_size**2
        expanded = np.repeat(ids, repeats)
        if context.usage + expanded.size > self.max_context_capacity():
            log.warning(
                "Conversation context is full. It is adivsable to clear context as cache size was reached"
            )
        time.sleep(prefill_delay_s() * expanded.size)
        clips = tuple(tuple(v) for v in videos if v)
        tokens = PromptTokens(expanded, grids, tuple(frames), video_grids, clips)
        embeds = self.runner.prompt_embeddings(tokens)
        config = self.runner.config
        positions, _ = rope_index(
            expanded, grids, config.image_token_id, image_config.merge_size, video_grids, self.video_pad
        )
        return context.feed(embeds, (positions + context.next_position)[:, None, :])

    def feed_token(self, token: int) -> np.ndarray:
        ids = np.asarray([token], dtype=np.int64)
        embeds = self.runner.prompt_embeddings(PromptTokens(ids, np.zeros((0, 3), np.int64), ()))
        return self.context.feed(embeds, np.full((3, 1, 1), self.context.next_position, dtype=np.int64))

    def generation_released(self, job: GenerationJob) -> None:
        with self._lock:
            if self._job is job:
                self._job = None

    def _ensure_idle(self, what: str) -> None:
        if self._job is not None and not self._job.device_done.is_set():
            fail(HAILO_INVALID_OPERATION, f"Failed to {what}. {BUSY}")

    # ----- context and settings --------------------------------------------------------------------

    def clear_context(self) -> None:
        self._ensure_idle("clear context")
        self.context.clear()
        self._is_first_prompt = True
        journal.log("context_cleared", kind=self.kind)

    def max_context_capacity(self) -> int:
        return int(self.hef.get("kv_cache_size", 2048))

    def save_context(self) -> bytes:
        self._ensure_idle("get context")
        return self.context.save()

    def load_context(self, blob: bytes) -> None:
        self._ensure_idle("set context")
        self.context.load(bytes(blob))

    def prompt_template(self) -> str:
        return str(self.hef["hailo_config"]["chat_template"])

    def set_stop_tokens(self, stop_tokens: list[str]) -> None:
        self.stop_sequences = [ids for ids in (self.tokenize(s) for s in stop_tokens) if ids]

    def get_stop_tokens(self) -> list[str]:
        return [self.decode(seq) for seq in self.stop_sequences]

    def set_generation_recovery_sequence(self, sequence: str) -> None:
        self.recovery_tokens = self.tokenize(sequence)

    def get_generation_recovery_sequence(self) -> str:
        return self.decode(self.recovery_tokens)

    def input_frame_format_order(self) -> FormatOrder:
        return FormatOrder.NHWC

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        job = self._job
        if job is not None and not job.device_done.is_set():
            job.abort()
        self.kv_cache.release()
        self.lease.release()
        journal.log("model_released", kind=self.kind)
