"""Qwen2-VL chat generation on ONNX Runtime + numpy, for the onnx-community three-file export layout.

model_dir holds config.json, generation_config.json, preprocessor_config.json, tokenizer.json,
tokenizer_config.json and onnx/{vision_encoder, embed_tokens, decoder_model_merged[_<variant>]}.onnx.
Everything is loaded and checked at construction (ModelLoadError naming the file); a request is
validated when generate() is called, before any event, and the work happens while it is iterated:
the vision encoder once for all images and once for all clips, the prompt embeddings with their
features in the <|image_pad|> and <|video_pad|> slots, one prefill, then one decoder run per token on
the cached keys and values. A prompt that continues a kept conversation (`kept_contexts`) starts from
its cache and prefills only the new tokens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers.decoders import DecodeStream

from npu_worker.backend import (
    ContextLengthError,
    Finish,
    GenerationEvent,
    InvalidRequestError,
    Message,
    ModelInfo,
    ModelLoadError,
    SamplingParams,
    Token,
)
from npu_worker.chat_template import ChatTemplate
from npu_worker.cpu.kept_contexts import ContextStore, KeptContext, media_of
from npu_worker.cpu.kv_decoder import DecodeRun, KVDecoder, numpy_dtype, past_names, present_names
from npu_worker.cpu.model_files import load_tokenizer, open_session
from npu_worker.cpu.mrope import decode_positions, rope_index
from npu_worker.cpu.qwen2vl_config import Qwen2VLConfig
from npu_worker.cpu.qwen2vl_image import ImageProcessorConfig, preprocess_clips, preprocess_images
from npu_worker.cpu.qwen2vl_prompt import PromptBuilder, PromptTokens
from npu_worker.json_constraint import JsonVocabulary
from npu_worker.sampling import TokenSampler
from npu_worker.stop_strings import StopStringFilter

BACKEND_NAME = "onnxruntime"
VISION_FILE = "onnx/vision_encoder.onnx"
EMBED_FILE = "onnx/embed_tokens.onnx"
DECODER_STEM = "onnx/decoder_model_merged"
EMBED_CACHE_LIMIT = 4096  # rows of generated-token embeddings kept (a 2B row is 6 KB)


def decoder_file(variant: str | None) -> str:
    """onnx/decoder_model_merged.onnx, or the quantized variant's file (e.g. "q4" -> ..._q4.onnx)."""
    if not variant:
        return f"{DECODER_STEM}.onnx"
    suffix = variant.removeprefix("_")
    if not re.fullmatch(r"[A-Za-z0-9]+", suffix):
        raise ModelLoadError(f"decoder variant {variant!r} is not a file-name suffix like q4, fp16, int8")
    return f"{DECODER_STEM}_{suffix}.onnx"


class Qwen2VLRunner:
    """One loaded Qwen2-VL model: generate(), count_tokens() and its ModelInfo."""

    def __init__(
        self,
        model_dir: str | Path,
        decoder_variant: str | None = None,
        threads: int | None = None,
        context_length: int | None = None,
        model_id: str | None = None,
        kept_contexts: int = 0,
        kept_context_bytes: int = 0,
    ) -> None:
        """`kept_contexts` conversations (at most `kept_context_bytes` of caches) are kept for their
        follow-up turns; 0 keeps none."""
        self.model_dir = model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"{model_dir}: model directory not found")
        self.config = config = Qwen2VLConfig.from_model_dir(model_dir)
        self.image_config = ImageProcessorConfig.from_model_dir(model_dir)
        if self.image_config.merge_size != config.merge_size:
            raise ModelLoadError(
                f"{model_dir / 'preprocessor_config.json'}: merge_size {self.image_config.merge_size} "
                f"differs from config.json's spatial_merge_size {config.merge_size}"
            )
        self.tokenizer = load_tokenizer(model_dir)
        self.prompts = PromptBuilder(
            ChatTemplate.from_model_dir(model_dir),
            self.tokenizer,
            self.image_config,
            config.image_token_id,
            config.video_token_id,
        )
        self.contexts = ContextStore(kept_contexts, kept_context_bytes)
        layers = config.num_layers
        self.vision = open_session(
            model_dir, VISION_FILE, ("pixel_values", "grid_thw"), ("image_features",), threads
        )
        self.embed = open_session(model_dir, EMBED_FILE, ("input_ids",), ("inputs_embeds",), threads)
        decoder_path = decoder_file(decoder_variant)
        decoder = open_session(
            model_dir,
            decoder_path,
            ("inputs_embeds", "attention_mask", "position_ids", *past_names(layers)),
            ("logits", *present_names(layers)),
            threads,
        )
        self.decoder = KVDecoder(
            decoder, str(model_dir / decoder_path), layers, config.num_kv_heads, config.head_dim
        )
        self.pixel_dtype = numpy_dtype(self.vision, "pixel_values", str(model_dir / VISION_FILE))
        self.context_length = min(
            config.max_position_embeddings, context_length or config.max_position_embeddings
        )
        self.token_embeddings: dict[int, np.ndarray] = {}
        self._json: JsonVocabulary | None = None
        self.info = ModelInfo(
            id=model_id or model_dir.name,
            kind="vlm",
            backend=BACKEND_NAME,
            context_length=self.context_length,
            min_pixels=self.image_config.min_pixels,
            max_pixels=self.image_config.max_pixels,
            capabilities=frozenset({"chat", "vision"}),
        )

    def _json_vocabulary(self) -> JsonVocabulary:
        """The tokenizer as the JSON grammar engine needs it, made at the first structured request."""
        if self._json is None:
            self._json = JsonVocabulary(self.model_dir / "tokenizer.json", self.config.eos_token_ids)
        return self._json

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of the messages: chat template and every image's tokens included."""
        return int(self.prompts.build(messages).input_ids.size)

    def generate(
        self, messages: Sequence[Message], params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[GenerationEvent]:
        """Validate now (InvalidRequestError, ContextLengthError), then stream Tokens and one Finish.

        Every generated token id yields one Token (text "" while held back or for special tokens),
        so completion_tokens equals the number of Tokens. Closing the iterator stops the work; a set
        `cancel` event ends it between two tokens with Finish("cancelled").
        """
        if params.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be >= 1, got {params.max_tokens}", "max_tokens")
        constraint = self._json_vocabulary().constraint(params.json_schema) if params.json_schema else None
        prompt = self.prompts.build(messages)
        sampler = TokenSampler(params, self.config.eos_token_ids, constraint, prompt.input_ids)
        prompt_tokens = int(prompt.input_ids.size)
        if prompt_tokens + 1 > self.context_length:
            raise ContextLengthError(prompt_tokens, self.context_length)
        budget = min(params.max_tokens, self.context_length - prompt_tokens)
        return self._decode(prompt, sampler, StopStringFilter(params.stop), budget, cancel)

    def _decode(
        self,
        prompt: PromptTokens,
        sampler: TokenSampler,
        stops: StopStringFilter,
        budget: int,
        cancel: threading.Event | None,
    ) -> Iterator[GenerationEvent]:
        prompt_tokens = int(prompt.input_ids.size)
        if cancel is not None and cancel.is_set():
            yield Finish("cancelled", prompt_tokens, 0)
            return
        config = self.config
        media = media_of(prompt, config.image_token_id, config.video_token_id, config.merge_size)
        kept, cached = self.contexts.take(prompt.input_ids, media) or (None, 0)
        positions, delta = self.rope_positions(prompt)
        embeds = self.prompt_embeddings(prompt, cached)
        run, logits = self.decoder.start(embeds, positions[:, None, cached:], kept)
        fed: list[int] = []
        try:
            yield from self._tokens(
                run, logits, sampler, stops, budget, prompt_tokens, delta, cancel, fed, cached
            )
        finally:
            covered = np.concatenate([prompt.input_ids, np.asarray(fed, dtype=np.int64)])
            self.contexts.keep(KeptContext(covered, prompt_tokens, media, run.cache))

    def _tokens(
        self,
        run: DecodeRun,
        logits: np.ndarray,
        sampler: TokenSampler,
        stops: StopStringFilter,
        budget: int,
        prompt_tokens: int,
        delta: int,
        cancel: threading.Event | None,
        fed: list[int],
        cached: int,
    ) -> Iterator[GenerationEvent]:
        """Sample, stream and feed back tokens; `fed` collects those whose keys are in the run's cache."""
        text_stream = DecodeStream(skip_special_tokens=True)
        eos = self.config.eos_token_ids
        for generated in range(1, budget + 1):
            token = sampler.choose(logits)
            if token in eos:
                yield Token(stops.flush(), token)
                yield Finish("stop", prompt_tokens, generated, cached)
                return
            text = stops.push(text_stream.step(self.tokenizer, token) or "")
            if stops.stopped:
                yield Token(text, token)
                yield Finish("stop", prompt_tokens, generated, cached)
                return
            if generated == budget:
                yield Token(text + stops.flush(), token)
                yield Finish("length", prompt_tokens, generated, cached)
                return
            yield Token(text, token)
            if cancel is not None and cancel.is_set():
                yield Finish("cancelled", prompt_tokens, generated, cached)
                return
            past_len = prompt_tokens + generated - 1
            logits = run.forward(self.token_embedding(token), decode_positions(past_len, delta))
            fed.append(token)

    def rope_positions(self, prompt: PromptTokens) -> tuple[np.ndarray, int]:
        """The prompt's M-RoPE positions [3, 1, S] and the delta that places the tokens after it."""
        config = self.config
        return rope_index(
            prompt.input_ids,
            prompt.image_grids,
            config.image_token_id,
            config.merge_size,
            prompt.video_grids,
            config.video_token_id,
        )

    def prompt_embeddings(self, prompt: PromptTokens, start: int = 0) -> np.ndarray:
        """inputs_embeds [1, S - start, H] of the prompt from token `start` on (never inside an image or
        a clip), the vision features of the images and clips from there written into their pad slots."""
        ids = prompt.input_ids[start:]
        embeds = self.embed.run(None, {"input_ids": ids[None, :]})[0]
        config = self.config
        sources: tuple[tuple[int, np.ndarray, Callable[[int], tuple[np.ndarray, np.ndarray]]], ...] = (
            (
                config.image_token_id,
                prompt.image_grids,
                lambda done: preprocess_images(prompt.images[done:], self.image_config),
            ),
            (
                config.video_token_id,
                prompt.video_grids,
                lambda done: preprocess_clips(prompt.clips[done:], self.image_config),
            ),
        )
        for token, grids, preprocess in sources:
            slots = ids == token
            if not slots.any():
                continue
            ends = np.cumsum(grids.prod(axis=1) // config.merge_size**2)
            done = int(np.searchsorted(ends, int((prompt.input_ids[:start] == token).sum()), side="right"))
            pixel_values, todo = preprocess(done)
            feed = {"pixel_values": pixel_values.astype(self.pixel_dtype, copy=False), "grid_thw": todo}
            embeds[0, slots] = self.vision.run(None, feed)[0]
        return embeds

    def token_embedding(self, token: int) -> np.ndarray:
        """inputs_embeds [1, 1, H] of one generated token, from a cache filled one id at a time."""
        row = self.token_embeddings.get(token)
        if row is None:
            if len(self.token_embeddings) >= EMBED_CACHE_LIMIT:
                self.token_embeddings.clear()
            ids = np.array([[token]], dtype=np.int64)
            row = self.embed.run(None, {"input_ids": ids})[0].astype(self.decoder.embed_dtype, copy=False)
            self.token_embeddings[token] = row
        return row
