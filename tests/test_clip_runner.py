"""The CLIP runner on ONNX Runtime with the committed demo model: golden equality, batching, odd inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npu_worker.cpu.clip_runner import ClipRunner

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests/golden/clip"
MODEL_DIR = ROOT / "models/demo/clip-demo"


@pytest.fixture(scope="module")
def runner() -> ClipRunner:
    return ClipRunner(MODEL_DIR, threads=2)


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "clip_golden.npz"))


@pytest.fixture(scope="module")
def cases() -> dict:
    return json.loads((GOLDEN / "cases.json").read_text())


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def golden_images(cases: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(GOLDEN / name).convert("RGB")) for name in cases["images"]]


def test_info_describes_the_model(runner: ClipRunner, golden: dict) -> None:
    info = runner.info
    assert info.kind == "clip" and info.id == "clip-demo"
    assert info.embedding_dim == golden["image_embeds"].shape[1]
    assert info.image_size == golden["pixel_values"].shape[2:]
    assert info.capabilities == {"embed_image", "embed_text", "classify"}


def test_image_embeddings_equal_the_torch_model(runner: ClipRunner, golden: dict, cases: dict) -> None:
    embeds = runner.embed_images(golden_images(cases))
    assert embeds.dtype == np.float32 and embeds.shape == golden["image_embeds"].shape
    np.testing.assert_allclose(embeds, unit(golden["image_embeds"]), atol=1e-4)


def test_tokenization_equals_the_hf_tokenizer(runner: ClipRunner, golden: dict, cases: dict) -> None:
    np.testing.assert_array_equal(runner.text_feeds(cases["prompts"])["input_ids"], golden["input_ids"])


def test_text_embeddings_equal_the_torch_model(runner: ClipRunner, golden: dict, cases: dict) -> None:
    embeds = runner.embed_texts(cases["prompts"])
    assert embeds.dtype == np.float32
    np.testing.assert_allclose(embeds, unit(golden["text_embeds"]), atol=1e-4)


def test_logit_scale_is_the_exp_of_the_trained_value(runner: ClipRunner, cases: dict) -> None:
    assert runner.logit_scale == pytest.approx(np.exp(cases["logit_scale"]), rel=1e-6)
    assert 1.0 < runner.logit_scale <= 100.0


def test_embeddings_have_unit_norm(runner: ClipRunner, cases: dict) -> None:
    for embeds in (
        runner.embed_images(golden_images(cases)),
        runner.embed_texts(["a red circle", "x" * 500]),
    ):
        np.testing.assert_allclose(np.linalg.norm(embeds, axis=1), 1.0, atol=1e-5)


def test_a_batch_equals_single_runs(runner: ClipRunner, cases: dict) -> None:
    images = golden_images(cases)
    batch = runner.embed_images(images)
    singles = np.concatenate([runner.embed_images([image]) for image in images])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    texts = ["a photo of a red circle", "a blue square and a yellow triangle next to each other"]
    np.testing.assert_allclose(
        runner.embed_texts(texts), np.concatenate([runner.embed_texts([t]) for t in texts]), atol=1e-5
    )


def test_long_texts_are_truncated_with_the_end_token_last(runner: ClipRunner) -> None:
    ids = runner.text_feeds(["a red circle " * 50, "a red circle"])["input_ids"]
    end = ids[1, -1]  # the short text is padded with the end token
    assert ids.shape == (2, runner.max_text_tokens)
    assert ids[0, -1] == end and (ids[0, :-1] != end).all()


def test_empty_lists_give_empty_arrays(runner: ClipRunner) -> None:
    assert runner.embed_images([]).shape == (0, runner.embedding_dim)
    assert runner.embed_texts([]).shape == (0, runner.embedding_dim)


def odd_images() -> list[np.ndarray | Image.Image]:
    base = Image.new("RGB", (90, 60), (200, 40, 40))
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    return [
        base.convert("CMYK"),
        palette,
        Image.fromarray(np.full((40, 30), 40000, dtype=np.uint16)),  # 16-bit greyscale
        np.full((50, 70, 3), 60000, dtype=np.uint16),
        np.zeros((1, 1, 3), dtype=np.uint8),
        np.full((200, 10000, 3), 128, dtype=np.uint8),
        np.full((10000, 200, 4), 90, dtype=np.uint8),  # RGBA, very tall
        np.random.default_rng(0).random((33, 47)),  # float greyscale
    ]


def test_odd_images_never_crash(runner: ClipRunner) -> None:
    images = odd_images()
    embeds = runner.embed_images(images)
    assert embeds.shape == (len(images), runner.embedding_dim)
    assert np.isfinite(embeds).all()
    np.testing.assert_allclose(np.linalg.norm(embeds, axis=1), 1.0, atol=1e-5)
