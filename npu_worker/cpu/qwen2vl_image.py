"""Qwen2-VL image preprocessing in numpy + Pillow, equal to transformers' Qwen2-VL image processor.

Each image is resized (bicubic, with PIL) to sides that are multiples of patch_size * merge_size with a
pixel count inside [min_pixels, max_pixels] (HF's smart_resize), rescaled, normalised, and cut into
patches of temporal_patch_size copies of the one frame, ordered merge block by merge block as the
vision encoder expects. A clip is cut the same way with temporal_patch_size consecutive frames per
patch (an odd count repeats its last frame), every frame at its first frame's size, as transformers'
Qwen2-VL video processor does (it resizes each frame by the same rule).

Odd sizes never fail. transformers refuses aspect ratios above 200 and, for very thin images, can
return more than max_pixels. Here, an image whose long/short side ratio exceeds
min(200, max_pixels / factor**2) is first padded with white, centred, on its short side up to that
ratio; after that HF's rule always lands inside the pixel budget. Tiny images (even 1x1) are scaled up
by HF's rule itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npu_worker.backend import ModelLoadError
from npu_worker.cpu.model_files import read_json
from npu_worker.images import WHITE, as_rgb_array

HF_MAX_ASPECT_RATIO = 200
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageProcessorConfig:
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD
    rescale_factor: float = 1 / 255
    resample: int = Image.Resampling.BICUBIC

    @property
    def factor(self) -> int:
        """Both resized sides are multiples of this (one merged token covers factor x factor pixels)."""
        return self.patch_size * self.merge_size

    @property
    def max_aspect_ratio(self) -> float:
        """The widest long/short ratio that fits the pixel budget with a one-token-high strip."""
        return min(HF_MAX_ASPECT_RATIO, self.max_pixels / self.factor**2)

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ImageProcessorConfig:
        """Read preprocessor_config.json: min/max pixels as keys or as size {shortest,longest}_edge."""
        path = model_dir / "preprocessor_config.json"
        data = read_json(model_dir, "preprocessor_config.json")
        size = data["size"] if isinstance(data.get("size"), dict) else {}
        values: dict[str, Any] = {
            "min_pixels": data.get("min_pixels", size.get("shortest_edge", size.get("min_pixels"))),
            "max_pixels": data.get("max_pixels", size.get("longest_edge", size.get("max_pixels"))),
        }
        for key in ("patch_size", "temporal_patch_size", "merge_size", "resample"):
            values[key] = data.get(key)
        if "rescale_factor" in data:
            values["rescale_factor"] = float(data["rescale_factor"])
        for key in ("image_mean", "image_std"):
            if key in data:
                stats = data[key]
                if not (isinstance(stats, list) and len(stats) == 3):
                    raise ModelLoadError(f"{path}: {key} should be a list of 3 numbers, found {stats!r}")
                values[key] = tuple(float(v) for v in stats)
        values = {k: v for k, v in values.items() if v is not None}
        for key in ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size"):
            if key in values and (not isinstance(values[key], int) or values[key] < 1):
                raise ModelLoadError(f"{path}: {key} should be a positive integer, found {values[key]!r}")
        config = cls(**values)
        if config.max_pixels < max(config.min_pixels, config.factor**2):
            raise ModelLoadError(f"{path}: max_pixels {config.max_pixels} is below min_pixels or one token")
        return config


def smart_resize(height: int, width: int, config: ImageProcessorConfig) -> tuple[int, int]:
    """HF's smart_resize: the (height, width) to resize to, for an aspect ratio within the limit."""
    factor = config.factor
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > config.max_pixels:
        beta = math.sqrt((height * width) / config.max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < config.min_pixels:
        beta = math.sqrt(config.min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def padded_size(height: int, width: int, config: ImageProcessorConfig) -> tuple[int, int]:
    """The canvas an image is padded to so its aspect ratio is within config.max_aspect_ratio."""
    limit = config.max_aspect_ratio
    if height > width * limit:
        return height, math.ceil(height / limit)
    if width > height * limit:
        return math.ceil(width / limit), width
    return height, width


def grid_thw(height: int, width: int, config: ImageProcessorConfig) -> tuple[int, int, int]:
    """The patch grid (t, h, w) an image of this size becomes; image tokens = t*h*w / merge_size**2."""
    resized_h, resized_w = smart_resize(*padded_size(height, width, config), config)
    return 1, resized_h // config.patch_size, resized_w // config.patch_size


def _pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = WHITE
    top = (height - image.shape[0]) // 2
    left = (width - image.shape[1]) // 2
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas


def video_grid_thw(
    frames: int, height: int, width: int, config: ImageProcessorConfig
) -> tuple[int, int, int]:
    """The patch grid (t, h, w) a clip of `frames` frames of its first frame's size becomes."""
    _, grid_h, grid_w = grid_thw(height, width, config)
    return -(-frames // config.temporal_patch_size), grid_h, grid_w


def _normalised(rgb: np.ndarray, size: tuple[int, int], config: ImageProcessorConfig) -> np.ndarray:
    """One frame padded to its aspect limit, resized to `size` (height, width), rescaled, normalised."""
    rgb = _pad_to(rgb, *padded_size(rgb.shape[0], rgb.shape[1], config))
    if rgb.shape[:2] != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), resample=config.resample))
    scaled = (rgb.astype(np.float64) * config.rescale_factor).astype(np.float32)
    mean = np.asarray(config.image_mean, dtype=np.float32)
    std = np.asarray(config.image_std, dtype=np.float32)
    return ((scaled - mean) / std).transpose(2, 0, 1)  # (C, H, W)


def _patches(
    frames: Sequence[Image.Image | np.ndarray], config: ImageProcessorConfig
) -> tuple[np.ndarray, tuple]:
    """Frames (at least one) as flat patches float32[t*h*w, 3*tp*p*p] and the grid (t, h, w), every
    frame at the first one's size; the last frame is repeated to fill the last temporal patch (so one
    frame, an image, becomes temporal_patch_size copies of itself)."""
    rgbs = [as_rgb_array(frame) for frame in frames]
    size = smart_resize(*padded_size(rgbs[0].shape[0], rgbs[0].shape[1], config), config)
    tp, p, m = config.temporal_patch_size, config.patch_size, config.merge_size
    video = np.stack([_normalised(rgb, size, config) for rgb in rgbs])
    video = np.concatenate([video, np.repeat(video[-1:], -len(video) % tp, axis=0)])  # whole patches
    t, grid_h, grid_w = len(video) // tp, size[0] // p, size[1] // p
    view = video.reshape(t, tp, 3, grid_h // m, m, p, grid_w // m, m, p)
    patches = view.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(t * grid_h * grid_w, 3 * tp * p * p)
    return np.ascontiguousarray(patches), (t, grid_h, grid_w)


def preprocess_images(
    images: Sequence[Image.Image | np.ndarray], config: ImageProcessorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """pixel_values float32[sum of h*w, 3*t*p*p] and grid_thw int64[len(images), 3], in order: each
    image is a clip of one frame."""
    return preprocess_clips([(image,) for image in images], config)


def preprocess_clips(
    clips: Sequence[Sequence[Image.Image | np.ndarray]], config: ImageProcessorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """pixel_values_videos float32[sum of t*h*w, 3*tp*p*p] and video_grid_thw int64[len(clips), 3]."""
    patches, grids = zip(*(_patches(clip, config) for clip in clips), strict=True)
    return np.concatenate(patches, axis=0), np.asarray(grids, dtype=np.int64)
