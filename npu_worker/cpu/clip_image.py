"""CLIP image preprocessing in numpy and Pillow, matching Hugging Face's CLIPImageProcessor.

The CPU runner cannot use transformers, yet its pixel values must equal what the model was trained
and exported with, so this follows HF's (PIL backend) steps exactly: convert to RGB, resize with
Pillow, optionally center-crop (zero-padding an image smaller than the crop), rescale in float64 then
cast to float32, normalise per channel, lay out as (N, 3, H, W).

Two resize modes exist in HF's processor and both are supported:
- ``size: {"shortest_edge": n}`` + ``do_center_crop`` with ``crop_size`` (released CLIP models):
  the short side becomes n, the long side ``int(n * long / short)``, then the center is cut out;
- ``size: {"height": h, "width": w}`` (the demo model, usually without a crop): the image is squashed
  to h x w, so nothing near the edges is cut away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npu_worker.backend import ModelLoadError
from npu_worker.images import as_rgb_array

# HF stores `resample` as Pillow's integer filter codes.
RESAMPLE_FILTERS: dict[int, Image.Resampling] = {int(f): f for f in Image.Resampling}
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipImageConfig:
    """The fields of a preprocessor_config.json that change CLIP's pixel values."""

    do_resize: bool = True
    shortest_edge: int | None = 224  # set: resize the short side to it, keeping the aspect ratio
    resize_to: tuple[int, int] | None = None  # (height, width) set: squash to exactly this size
    resample: Image.Resampling = Image.Resampling.BICUBIC
    do_center_crop: bool = True
    crop_size: tuple[int, int] = (224, 224)  # (height, width)
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of every preprocessed image: the encoder's input size."""
        if self.do_center_crop:
            return self.crop_size
        if self.do_resize and self.resize_to is not None:
            return self.resize_to
        raise ValueError("without a center crop or a fixed (height, width) resize, image sizes vary")

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> ClipImageConfig:
        """Read HF's preprocessor_config.json fields (HF's CLIP defaults where absent)."""
        try:
            config = cls(
                do_resize=bool(data.get("do_resize", True)),
                shortest_edge=_shortest_edge(data.get("size", {"shortest_edge": 224})),
                resize_to=_height_width(data.get("size", {"shortest_edge": 224})),
                resample=RESAMPLE_FILTERS[int(data.get("resample", Image.Resampling.BICUBIC))],
                do_center_crop=bool(data.get("do_center_crop", True)),
                crop_size=_crop_size(data.get("crop_size", {"height": 224, "width": 224})),
                do_rescale=bool(data.get("do_rescale", True)),
                rescale_factor=float(data.get("rescale_factor", 1 / 255)),
                do_normalize=bool(data.get("do_normalize", True)),
                image_mean=_triple(data.get("image_mean", OPENAI_CLIP_MEAN)),
                image_std=_triple(data.get("image_std", OPENAI_CLIP_STD)),
            )
            config.output_size  # noqa: B018 - validates that the encoder input size is fixed
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{path}: unusable image preprocessing settings ({exc!r})") from exc
        if config.do_resize and config.shortest_edge is None and config.resize_to is None:
            raise ModelLoadError(f"{path}: 'size' needs 'shortest_edge' or 'height' and 'width'")
        return config


def _shortest_edge(size: Any) -> int | None:
    if isinstance(size, int):  # very old configs: an int means the shortest edge
        return size
    return int(size["shortest_edge"]) if "shortest_edge" in size else None


def _height_width(size: Any) -> tuple[int, int] | None:
    if isinstance(size, dict) and "height" in size and "width" in size and "shortest_edge" not in size:
        return int(size["height"]), int(size["width"])
    return None


def _crop_size(crop: Any) -> tuple[int, int]:
    if isinstance(crop, int):
        return crop, crop
    return int(crop["height"]), int(crop["width"])


def _triple(values: Any) -> tuple[float, float, float]:
    if isinstance(values, (int, float)):
        return float(values), float(values), float(values)
    if len(values) != 3:
        raise ValueError(f"expected 3 per-channel values, got {values!r}")
    return float(values[0]), float(values[1]), float(values[2])


def resized_size(height: int, width: int, config: ClipImageConfig) -> tuple[int, int]:
    """(height, width) after the resize step, with HF's rounding (the long side is truncated)."""
    if config.resize_to is not None:
        return config.resize_to
    assert config.shortest_edge is not None
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(config.shortest_edge * long / short)
    return (new_long, config.shortest_edge) if width <= height else (config.shortest_edge, new_long)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """HF's center crop of an (h, w, c) array: top/left offsets floor, zero padding if too small."""
    orig_h, orig_w = image.shape[:2]
    top, left = (orig_h - height) // 2, (orig_w - width) // 2
    if top >= 0 and left >= 0:
        return image[top : top + height, left : left + width]
    new_h, new_w = max(height, orig_h), max(width, orig_w)
    padded = np.zeros((new_h, new_w, image.shape[2]), dtype=image.dtype)
    pad_top, pad_left = ceil((new_h - orig_h) / 2), ceil((new_w - orig_w) / 2)
    padded[pad_top : pad_top + orig_h, pad_left : pad_left + orig_w] = image
    top, left = top + pad_top, left + pad_left
    return padded[max(0, top) : min(new_h, top + height), max(0, left) : min(new_w, left + width)]


def resize_uint8(image: np.ndarray, config: ClipImageConfig) -> np.ndarray:
    """The resized (and cropped) RGB uint8 image, before any float conversion."""
    if config.do_resize:
        height, width = resized_size(image.shape[0], image.shape[1], config)
        pil = Image.fromarray(image).resize((width, height), resample=config.resample)
        image = np.asarray(pil)
    if config.do_center_crop:
        image = center_crop(image, *config.crop_size)
    return image


def to_pixel_values(resized: np.ndarray, config: ClipImageConfig) -> np.ndarray:
    """Rescale and normalise (h, w, 3) uint8 pixels into a float32 (3, h, w) array."""
    pixels = resized.astype(np.float64)
    if config.do_rescale:
        pixels = (pixels * config.rescale_factor).astype(np.float32)
    else:
        pixels = pixels.astype(np.float32)
    if config.do_normalize:
        mean = np.asarray(config.image_mean, dtype=np.float32)
        std = np.asarray(config.image_std, dtype=np.float32)
        pixels = (pixels - mean) / std
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def preprocess(images: Sequence[np.ndarray | Image.Image], config: ClipImageConfig) -> np.ndarray:
    """float32 pixel values (N, 3, H, W) for any images as_rgb_array accepts."""
    height, width = config.output_size
    batch = np.empty((len(images), 3, height, width), dtype=np.float32)
    for i, image in enumerate(images):
        batch[i] = to_pixel_values(resize_uint8(as_rgb_array(image), config), config)
    return batch
