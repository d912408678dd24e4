"""Model inputs for the demo VLM, built the way the Hugging Face Qwen2-VL processor builds them.

Chat template -> prompt string -> each <|image_pad|> (<|video_pad|>) repeated once per merged image
(clip) token -> ids, with pixel values and grids from transformers' Qwen2-VL image processor. Training,
evaluation and the golden fixtures all go through here, so they agree with each other and with the
ONNX runner's contract.

Clips: transformers' Qwen2-VL video processor needs torchvision, which cannot be installed beside this
torch build, so `video_patches` does its work in numpy: frames already at a processed size (multiples
of 28 inside the pixel budget, as the shapes-world clips are) are rescaled, normalised and cut into
patches of two consecutive frames (an odd count repeats the last frame), in the exact layout of
`Qwen2VLVideoProcessor.patchify`. The golden writer checks that layout against transformers' image
processor on a still clip (two equal frames are one image).
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
VIDEO_PAD = "<|video_pad|>"
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


def video_patches(frames: list[Image.Image], processor: Qwen2VLImageProcessorPil) -> tuple[np.ndarray, tuple]:
    """One clip as flat patches float32[t*h*w, 3*2*p*p] and its grid (t, h, w), like transformers'
    Qwen2VLVideoProcessor (permute 0,1,4,7,5,8,3,2,6,9 of the patch view) for unresized frames."""
    pixels = np.stack([np.asarray(f.convert("RGB"), dtype=np.float32) for f in frames])
    height, width = pixels.shape[1:3]
    if height % (PATCH_SIZE * MERGE_SIZE) or width % (PATCH_SIZE * MERGE_SIZE):
        raise ValueError(
            f"clip frames must be multiples of {PATCH_SIZE * MERGE_SIZE} pixels, got {width}x{height}"
        )
    if len(frames) % TEMPORAL_PATCH_SIZE:
        pixels = np.concatenate([pixels, pixels[-1:]])
    mean = np.asarray(processor.image_mean, dtype=np.float32)
    std = np.asarray(processor.image_std, dtype=np.float32)
    video = ((pixels * np.float32(processor.rescale_factor) - mean) / std).transpose(0, 3, 1, 2)
    t, p, m = len(video) // TEMPORAL_PATCH_SIZE, PATCH_SIZE, MERGE_SIZE
    gh, gw = height // p, width // p
    view = video.reshape(t, TEMPORAL_PATCH_SIZE, 3, gh // m, m, p, gw // m, m, p)
    patches = view.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(t * gh * gw, 3 * TEMPORAL_PATCH_SIZE * p * p)
    return np.ascontiguousarray(patches, dtype=np.float32), (t, gh, gw)


@dataclass
class Encoded:
    """One prompt ready for the model: ids with expanded image and video pads, plus the tensors."""

    input_ids: list[int]
    pixel_values: np.ndarray | None  # (patches, 3 * temporal * patch * patch)
    image_grid_thw: np.ndarray | None  # (images, 3)
    pixel_values_videos: np.ndarray | None = None  # (patches, 3 * temporal * patch * patch)
    video_grid_thw: np.ndarray | None = None  # (videos, 3)


class InputBuilder:
    """Turns messages + images into token ids and pixel values."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.processor = make_image_processor()
        self.image_pad_id = token_id(tokenizer, IMAGE_PAD)
        self.video_pad_id = token_id(tokenizer, VIDEO_PAD)
        self.im_end_id = token_id(tokenizer, IM_END)
        self.pad_id = token_id(tokenizer, PAD)

    @staticmethod
    def expand_pads(prompt: str, pad: str, grids: np.ndarray | None) -> str:
        """Repeat each `pad` (image or video) t*h*w/merge^2 times, as the HF processor does."""
        pieces = prompt.split(pad)
        n_items = 0 if grids is None else len(grids)
        if len(pieces) - 1 != n_items:
            raise ValueError(f"prompt has {len(pieces) - 1} {pad} slots but {n_items} inputs were given")
        out = pieces[0]
        for i, piece in enumerate(pieces[1:]):
            assert grids is not None
            out += pad * (int(np.prod(grids[i])) // MERGE_SIZE**2) + piece
        return out

    def encode(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        videos: tuple[list[Image.Image], ...] | list[list[Image.Image]] = (),
    ) -> Encoded:
        prompt = render_prompt(messages)
        pixel_values = grids = video_values = video_grids = None
        if images:
            batch = self.processor(images=images, return_tensors="np")
            pixel_values = batch["pixel_values"].astype(np.float32)
            grids = batch["image_grid_thw"].astype(np.int64)
        if videos:
            patches, video_shapes = zip(
                *(video_patches(list(v), self.processor) for v in videos), strict=True
            )
            video_values = np.concatenate(patches)
            video_grids = np.asarray(video_shapes, dtype=np.int64)
        text = self.expand_pads(self.expand_pads(prompt, IMAGE_PAD, grids), VIDEO_PAD, video_grids)
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return Encoded(ids, pixel_values, grids, video_values, video_grids)

    def tensors(
        self, encoded: list[Encoded], targets: list[list[int]] | None = None
    ) -> dict[str, torch.Tensor]:
        """`batch_tensors` with this tokenizer's pad, image and video ids."""
        return batch_tensors(encoded, self.pad_id, self.image_pad_id, targets, self.video_pad_id)

    def answer_ids(self, answer: str) -> list[int]:
        """The assistant's answer followed by <|im_end|> (what the loss is computed on)."""
        return [*self.tokenizer.encode(answer, add_special_tokens=False).ids, self.im_end_id]


def batch_tensors(
    encoded: list[Encoded],
    pad_id: int,
    image_pad_id: int,
    targets: list[list[int]] | None = None,
    video_pad_id: int | None = None,
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
    types = (ids == image_pad_id).long()
    if video_pad_id is not None:
        types += 2 * (ids == video_pad_id).long()  # transformers: text 0, image 1, video 2
    out = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types}
    if targets:
        out["labels"] = labels
    pixels = [e.pixel_values for e in encoded if e.pixel_values is not None]
    if pixels:
        out["pixel_values"] = torch.from_numpy(np.concatenate(pixels))
        out["image_grid_thw"] = torch.from_numpy(
            np.concatenate([e.image_grid_thw for e in encoded if e.image_grid_thw is not None])
        )
    clips = [e for e in encoded if e.pixel_values_videos is not None and e.video_grid_thw is not None]
    if clips:
        out["pixel_values_videos"] = torch.from_numpy(np.concatenate([e.pixel_values_videos for e in clips]))  # type: ignore[misc]
        out["video_grid_thw"] = torch.from_numpy(np.concatenate([e.video_grid_thw for e in clips]))  # type: ignore[misc]
    return out
