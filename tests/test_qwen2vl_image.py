"""Qwen2-VL preprocessing: config reading and odd images, which must never fail.

Equality with transformers' image processor is checked on the golden images in
test_qwen2vl_golden.py; here, odd inputs must land inside the processor's limits.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart
from npu_worker.cpu.qwen2vl_image import ImageProcessorConfig, grid_thw, preprocess_images
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.images import as_rgb_array

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo" / "qwen2-vl-demo"
CONFIG = ImageProcessorConfig.from_model_dir(MODEL_DIR)
REAL_2B = ImageProcessorConfig(min_pixels=3136, max_pixels=12845056)  # Qwen2-VL-2B-Instruct's budget


def pil_roundtrip(image: Image.Image, fmt: str) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return Image.open(io.BytesIO(buffer.getvalue()))


def odd_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    sixteen = Image.fromarray(rng.integers(0, 65536, (50, 70), dtype=np.uint16))
    return {
        "cmyk": as_rgb_array(pil_roundtrip(rgb.convert("CMYK"), "JPEG")),
        "palette_transparent": as_rgb_array(pil_roundtrip(palette, "PNG")),
        "16bit": as_rgb_array(pil_roundtrip(sixteen, "PNG")),
        "1x1": np.full((1, 1, 3), 200, dtype=np.uint8),
        "10000x200": np.full((200, 10000, 3), 90, dtype=np.uint8),
        "5x3000": np.full((3000, 5, 3), 90, dtype=np.uint8),
        "aspect_400": np.full((2, 800, 3), 90, dtype=np.uint8),
    }


def assert_within_limits(grid: tuple[int, int, int], config: ImageProcessorConfig) -> None:
    _, h, w = grid
    pixels = h * w * config.patch_size**2
    assert config.min_pixels <= pixels <= config.max_pixels
    assert h % config.merge_size == 0 and w % config.merge_size == 0


@pytest.mark.parametrize(("name", "image"), odd_images().items())
def test_odd_images_become_valid_patches_within_the_pixel_budget(name, image):
    pixel_values, grids = preprocess_images([image], CONFIG)
    t, h, w = (int(v) for v in grids[0])
    assert_within_limits((t, h, w), CONFIG)
    assert pixel_values.shape == (t * h * w, 3 * CONFIG.temporal_patch_size * CONFIG.patch_size**2)
    assert pixel_values.dtype == np.float32 and np.isfinite(pixel_values).all()
    assert grid_thw(image.shape[0], image.shape[1], CONFIG) == (t, h, w)  # counting agrees with processing


@pytest.mark.parametrize("size", [(1, 1), (13, 13), (1, 200), (1, 201), (1, 5000), (10000, 200), (3000, 5)])
@pytest.mark.parametrize("config", [CONFIG, REAL_2B], ids=["demo", "2B"])
def test_extreme_sizes_stay_within_the_budget(size, config):
    assert_within_limits(grid_thw(*size, config), config)


def test_very_thin_images_are_padded_with_white_not_stretched():
    config = ImageProcessorConfig(min_pixels=3136, max_pixels=12544)  # ratio limit 16:1
    thin = np.zeros((10, 1600, 3), dtype=np.uint8)  # a black strip, 160:1
    pixel_values, grids = preprocess_images([thin], config)
    patches = pixel_values.reshape(-1, 3, config.temporal_patch_size, config.patch_size, config.patch_size)
    white = (1.0 - np.asarray(config.image_mean)) / np.asarray(config.image_std)
    assert np.allclose(patches[0, :, 0, 0, 0], white, atol=1e-3)  # the top-left corner is padding
    assert grids[0].tolist() == [1, 2, 32]


def test_several_images_are_concatenated_in_order():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (60, 200, 3), dtype=np.uint8)
    both, grids = preprocess_images([a, b], CONFIG)
    first, _ = preprocess_images([a], CONFIG)
    second, _ = preprocess_images([b], CONFIG)
    np.testing.assert_array_equal(both, np.concatenate([first, second]))
    assert grids.shape == (2, 3) and grids.dtype == np.int64


def test_temporal_patch_repeats_the_single_frame():
    image = np.random.default_rng(2).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    pixel_values, _ = preprocess_images([image], CONFIG)
    frames = pixel_values.reshape(-1, 3, CONFIG.temporal_patch_size, CONFIG.patch_size**2)
    np.testing.assert_array_equal(frames[:, :, 0], frames[:, :, 1])


@pytest.mark.parametrize(
    "layout",
    [
        {"min_pixels": 1000, "max_pixels": 50000},
        {"size": {"shortest_edge": 1000, "longest_edge": 50000}},
    ],
    ids=["min_max_keys", "size_dict"],
)
def test_pixel_budget_is_read_from_either_preprocessor_layout(tmp_path, layout):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"patch_size": 14, **layout}))
    config = ImageProcessorConfig.from_model_dir(tmp_path)
    assert (config.min_pixels, config.max_pixels) == (1000, 50000)


def test_the_runner_answers_about_every_odd_image():
    runner = Qwen2VLRunner(MODEL_DIR)
    images = odd_images()
    messages = [Message("user", (*(ImagePart(i) for i in images.values()), TextPart("How many shapes?")))]
    events = list(runner.generate(messages, SamplingParams(temperature=0, max_tokens=1)))
    assert events[-1].prompt_tokens == runner.count_tokens(messages)  # type: ignore[union-attr]
    assert events[-1].completion_tokens == 1  # type: ignore[union-attr]
