"""CLIP preprocessing equals Hugging Face's CLIPImageProcessor (golden pixel values) in both modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npu_worker.backend import ModelLoadError
from npu_worker.cpu.clip_image import ClipImageConfig, center_crop, preprocess, resized_size

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/clip"
MODEL_DIR = ROOT / "models/demo/clip-demo"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "clip_golden.npz"))


@pytest.fixture(scope="module")
def cases() -> dict:
    return json.loads((GOLDEN / "cases.json").read_text())


def load_images(cases: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(GOLDEN / name).convert("RGB")) for name in cases["images"]]


def test_demo_mode_squashes_to_square_like_hf(golden: dict, cases: dict) -> None:
    config = ClipImageConfig.from_json(
        json.loads((MODEL_DIR / "preprocessor_config.json").read_text()), MODEL_DIR
    )
    assert not config.do_center_crop and config.resize_to is not None
    pixels = preprocess(load_images(cases), config)
    assert pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, golden["pixel_values"], atol=1e-4)


def test_shortest_edge_and_center_crop_mode_like_hf(golden: dict, cases: dict) -> None:
    mode = cases["shortest_edge_mode"]
    config = ClipImageConfig.from_json(mode["preprocessor_config"], GOLDEN / "cases.json")
    image = np.asarray(Image.open(GOLDEN / mode["image"]).convert("RGB"))
    assert image.shape[0] != image.shape[1]
    pixels = preprocess([image], config)
    assert pixels.shape == golden["pixel_values_shortest_edge"].shape
    np.testing.assert_allclose(pixels, golden["pixel_values_shortest_edge"], atol=1e-4)


def test_shortest_edge_keeps_aspect_ratio_with_hf_truncation() -> None:
    config = ClipImageConfig(shortest_edge=224)
    assert resized_size(200, 10000, config) == (224, 11200)
    assert resized_size(300, 200, config) == (336, 224)  # int(224 * 300 / 200)
    assert resized_size(205, 300, config) == (224, 327)  # int(327.8): truncated, not rounded


def test_center_crop_pads_small_images_with_zeros() -> None:
    image = np.full((2, 4, 3), 7, dtype=np.uint8)
    cropped = center_crop(image, 4, 2)
    assert cropped.shape == (4, 2, 3)
    assert cropped[0].sum() == 0 and cropped[-1].sum() == 0  # padded rows
    assert (cropped[1:3] == 7).all()


@pytest.mark.parametrize(
    "fields",
    [
        {"size": {"longest_edge": 96}, "do_center_crop": False},  # no usable resize key
        {"size": {"shortest_edge": 96}, "do_center_crop": False},  # varying output sizes
        {"image_mean": [0.5, 0.5]},  # wrong channel count
        {"resample": 99},  # not a Pillow filter
    ],
)
def test_unusable_settings_raise_model_load_error_naming_the_file(fields: dict) -> None:
    with pytest.raises(ModelLoadError, match=r"preprocessor_config\.json"):
        ClipImageConfig.from_json(fields, Path("/m/preprocessor_config.json"))
