"""CLIP image and text embeddings on ONNX Runtime, from a Hugging Face / optimum export directory.

The directory layout is the one optimum writes for CLIP (and the demo model copies):
config.json, preprocessor_config.json, tokenizer.json (+ tokenizer_config.json /
special_tokens_map.json naming the pad and eos tokens), onnx/vision_model.onnx
(pixel_values -> image_embeds) and onnx/text_model.onnx (input_ids [, attention_mask] -> text_embeds).
Both encoders output projected, unnormalised embeddings; this runner L2-normalises them.

Decisions callers rely on:
- Everything is loaded and checked at construction; any missing or malformed file raises
  ModelLoadError naming it, never an error at the first request.
- Empty inputs are not an error: embed_images([]) and embed_texts([]) return a (0, D) array.
- Texts are tokenised with the tokenizer's own post-processor (<|startoftext|> ... <|endoftext|>),
  truncated to text_config.max_position_embeddings with the end token kept last, and padded with
  the pad token (CLIP: the end token) to the longest text of the batch. The text encoder pools at the
  first end token, so padding does not change a text's embedding.
- The logit scale: CLIPConfig itself only holds `logit_scale_init_value`, so the exporter adds a
  top-level "logit_scale" (the trained log value) to config.json. Exports without it get
  log(100) - the value released CLIP models converged to (the clamp CLIP training applies) -
  and a warning at load.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npu_worker.backend import ModelInfo, ModelLoadError
from npu_worker.cpu.clip_image import ClipImageConfig, preprocess
from npu_worker.cpu.model_files import load_tokenizer, open_session, read_json, require_key

log = logging.getLogger(__name__)

DEFAULT_LOGIT_SCALE = math.log(100.0)
DEFAULT_END_TOKEN = "<|endoftext|>"  # noqa: S105 - a tokenizer token, not a secret
CAPABILITIES = frozenset({"embed_image", "embed_text", "classify"})


def _token_name(value: Any) -> str | None:
    """A special token from tokenizer_config.json: a string, or an AddedToken dict with 'content'."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ClipRunner:
    """One loaded CLIP model: embeds images and texts into the same L2-normalised space."""

    def __init__(
        self,
        model_dir: str | Path,
        threads: int | None = None,
        model_id: str | None = None,
        image_encoder: bool = True,
    ) -> None:
        """image_encoder=False loads only the text side (the Hailo backend encodes images on the NPU)."""
        self.model_dir = Path(model_dir)
        config_path = self.model_dir / "config.json"
        config = read_json(self.model_dir, "config.json")
        text_config = require_key(config, "text_config", config_path, dict)
        self.max_text_tokens: int = require_key(text_config, "max_position_embeddings", config_path)
        self.embedding_dim: int = require_key(config, "projection_dim", config_path)
        self._log_logit_scale = self._read_logit_scale(config, config_path)
        self.image_config = ClipImageConfig.from_json(
            read_json(self.model_dir, "preprocessor_config.json"), self.model_dir / "preprocessor_config.json"
        )
        self._load_tokenizer()
        self._vision = (
            open_session(
                self.model_dir, "onnx/vision_model.onnx", ("pixel_values",), ("image_embeds",), threads
            )
            if image_encoder
            else None
        )
        self._text = open_session(
            self.model_dir, "onnx/text_model.onnx", ("input_ids",), ("text_embeds",), threads
        )
        self._text_inputs = {i.name: i.type for i in self._text.get_inputs()}
        self._check_shapes()
        self.info = ModelInfo(
            id=model_id or self.model_dir.name,
            kind="clip",
            backend="onnxruntime",
            embedding_dim=self.embedding_dim,
            image_size=self.image_config.output_size,
            capabilities=CAPABILITIES,
        )

    @staticmethod
    def _read_logit_scale(config: dict[str, Any], path: Path) -> float:
        if "logit_scale" not in config:
            log.warning(
                "%s has no 'logit_scale'; using log(100), the value released CLIP models reached", path
            )
            return DEFAULT_LOGIT_SCALE
        return float(require_key(config, "logit_scale", path, (int, float)))

    def _load_tokenizer(self) -> None:
        """The tokenizer with CLIP's truncation (end token kept) and padding (pad token) switched on."""
        tokenizer = load_tokenizer(self.model_dir)
        path = self.model_dir / "tokenizer.json"
        names = {
            **read_json(self.model_dir, "special_tokens_map.json", required=False),
            **read_json(self.model_dir, "tokenizer_config.json", required=False),
        }
        end_token = _token_name(names.get("eos_token")) or DEFAULT_END_TOKEN
        pad_token = _token_name(names.get("pad_token")) or end_token
        end_id, pad_id = tokenizer.token_to_id(end_token), tokenizer.token_to_id(pad_token)
        if end_id is None or pad_id is None:
            raise ModelLoadError(
                f"{path}: no id for the end token {end_token!r} or the pad token {pad_token!r}"
            )
        if tokenizer.encode("a").ids[-1:] != [end_id]:
            raise ModelLoadError(f"{path}: its post-processor does not end sequences with {end_token!r}")
        tokenizer.enable_truncation(self.max_text_tokens)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._tokenizer = tokenizer

    def _check_shapes(self) -> None:
        """Fixed dimensions of the ONNX inputs/outputs must agree with the JSON configs."""
        sessions = [(self._text, "text_embeds", "text")]
        if self._vision is not None:
            pixels = self._vision.get_inputs()[0].shape
            size = self.image_config.output_size
            if all(isinstance(d, int) for d in pixels[2:]) and tuple(pixels[2:]) != size:
                raise ModelLoadError(
                    f"{self.model_dir / 'onnx/vision_model.onnx'}: takes {pixels[2:]} images but "
                    f"preprocessor_config.json makes {size}"
                )
            sessions.append((self._vision, "image_embeds", "vision"))
        for session, name, file in sessions:
            shape = next(o.shape for o in session.get_outputs() if o.name == name)
            if isinstance(shape[-1], int) and shape[-1] != self.embedding_dim:
                raise ModelLoadError(
                    f"{self.model_dir / f'onnx/{file}_model.onnx'}: {name} has {shape[-1]} dimensions but "
                    f"config.json's projection_dim is {self.embedding_dim}"
                )

    @property
    def has_image_encoder(self) -> bool:
        return self._vision is not None

    @property
    def logit_scale(self) -> float:
        """The learned temperature (exp of the stored log value) that turns cosines into logits."""
        return math.exp(self._log_logit_scale)

    def embed_images(self, images: Sequence[np.ndarray | Image.Image]) -> np.ndarray:
        """float32 (N, D) L2-normalised embeddings; all images in one encoder run."""
        if not images:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        if self._vision is None:
            raise ValueError("this ClipRunner was loaded without its image encoder")
        pixel_values = preprocess(images, self.image_config)
        (embeds,) = self._vision.run(["image_embeds"], {"pixel_values": pixel_values})
        return l2_normalise(embeds)

    def text_feeds(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The text encoder's int64 inputs: ids (N, L) padded to the longest text [, attention mask]."""
        encodings = self._tokenizer.encode_batch(list(texts))
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64)}
        if "attention_mask" in self._text_inputs:  # some exports take one; padding sits after the end token
            feeds["attention_mask"] = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return feeds

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the texts take, start and end tokens included, padding not (usage counts)."""
        return sum(sum(e.attention_mask) for e in self._tokenizer.encode_batch(list(texts)))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (N, D) L2-normalised embeddings."""
        if not texts:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        feeds = self.text_feeds(texts)
        if self._text_inputs["input_ids"] == "tensor(int32)":
            feeds = {k: v.astype(np.int32) for k, v in feeds.items()}
        (embeds,) = self._text.run(["text_embeds"], feeds)
        return l2_normalise(embeds)
