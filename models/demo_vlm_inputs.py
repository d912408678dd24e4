"""Model inputs for the demo VLM, built the way the Hugging Face Qwen2-VL processor builds them.

Chat template -> prompt string -> each <|image_pad|> repeated once per merged image token -> ids, with
pixel values and grids from transformers' Qwen2-VL image processor. Training, evaluation and the golden
fixtures all go through here, so they agree with each other and with the ONNX runner's contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np
import torch
from demo_vlm_tokenizer import CHAT_TEMPLATE, token_id
from PIL import Image
from tokenizers import Tokenizer
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

IMAGE_PAD = "<|image_pad|>"
IM_END = "<|im_end|>"
PAD = "<|endoftext|>"

# Pixel budget: images are resized to about 112x112 pixels (8x8 patches, 16 tokens for a square).
MIN_PIXELS = 56 * 56
MAX_PIXELS = 112 * 112
PATCH_SIZE = 14
TEMPORAL_PATCH_SIZE = 2
MERGE_SIZE = 2


def make_image_processor() -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        patch_size=PATCH_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        merge_size=MERGE_SIZE,
    )


_TEMPLATE = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(CHAT_TEMPLATE)


def render_prompt(messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
    """The chat template applied to messages (same Jinja settings as transformers)."""
    return _TEMPLATE.render(messages=messages, add_generation_prompt=add_generation_prompt)


@dataclass
class Encoded:
    """One prompt ready for the model: ids with expanded image pads, plus the image tensors."""

    input_ids: list[int]
    pixel_values: np.ndarray | None  # (patches, 3 * temporal * patch * patch)
    image_grid_thw: np.ndarray | None  # (images, 3)


class InputBuilder:
    """Turns messages + images into token ids and pixel values."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.processor = make_image_processor()
        self.image_pad_id = token_id(tokenizer, IMAGE_PAD)
        self.im_end_id = token_id(tokenizer, IM_END)
        self.pad_id = token_id(tokenizer, PAD)

    def expand_image_pads(self, prompt: str, grids: np.ndarray | None) -> str:
        """Repeat each <|image_pad|> t*h*w/merge^2 times, as the HF processor does."""
        pieces = prompt.split(IMAGE_PAD)
        n_images = 0 if grids is None else len(grids)
        if len(pieces) - 1 != n_images:
            raise ValueError(f"prompt has {len(pieces) - 1} image slots but {n_images} images were given")
        out = pieces[0]
        for i, piece in enumerate(pieces[1:]):
            assert grids is not None
            out += IMAGE_PAD * (int(np.prod(grids[i])) // MERGE_SIZE**2) + piece
        return out

    def encode(self, messages: list[dict[str, Any]], images: list[Image.Image]) -> Encoded:
        prompt = render_prompt(messages)
        pixel_values = grids = None
        if images:
            batch = self.processor(images=images, return_tensors="np")
            pixel_values = batch["pixel_values"].astype(np.float32)
            grids = batch["image_grid_thw"].astype(np.int64)
        ids = self.tokenizer.encode(self.expand_image_pads(prompt, grids), add_special_tokens=False).ids
        return Encoded(ids, pixel_values, grids)

    def answer_ids(self, answer: str) -> list[int]:
        """The assistant's answer followed by <|im_end|> (what the loss is computed on)."""
        return [*self.tokenizer.encode(answer, add_special_tokens=False).ids, self.im_end_id]


def batch_tensors(
    encoded: list[Encoded], pad_id: int, image_pad_id: int, targets: list[list[int]] | None = None
) -> dict[str, torch.Tensor]:
    """Pad a batch: right padding with labels for training (targets given), left padding for generation."""
    rows = [e.input_ids + (targets[i] if targets else []) for i, e in enumerate(encoded)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if targets else slice(width - len(row), width)
        ids[i, span] = torch.tensor(row)
        mask[i, span] = 1
        if targets:
            labels[i, len(encoded[i].input_ids) : len(row)] = torch.tensor(targets[i])
    out = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": (ids == image_pad_id).long()}
    if targets:
        out["labels"] = labels
    pixels = [e.pixel_values for e in encoded if e.pixel_values is not None]
    if pixels:
        out["pixel_values"] = torch.from_numpy(np.concatenate(pixels))
        out["image_grid_thw"] = torch.from_numpy(
            np.concatenate([e.image_grid_thw for e in encoded if e.image_grid_thw is not None])
        )
    return out
