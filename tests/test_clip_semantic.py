"""The committed demo CLIP, run by the ONNX runner, actually recognises shapes-world images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapes_world as sw
from PIL import Image, ImageDraw

from npu_worker.cpu.clip_runner import ClipRunner

MODEL_DIR = Path(__file__).resolve().parent.parent / "models/demo/clip-demo"
LABELS = [(c, s) for c in sw.COLOUR_NAMES for s in sw.SHAPES]
PROMPTS = [f"a photo of a {c} {s}" for c, s in LABELS]


@pytest.fixture(scope="module")
def runner() -> ClipRunner:
    return ClipRunner(MODEL_DIR, threads=2)


@pytest.fixture(scope="module")
def prompt_embeds(runner: ClipRunner) -> np.ndarray:
    return runner.embed_texts(PROMPTS)


def test_a_drawn_red_circle_ranks_its_prompt_first(runner: ClipRunner, prompt_embeds: np.ndarray) -> None:
    image = Image.new("RGB", (240, 180), (245, 245, 245))
    ImageDraw.Draw(image).ellipse((70, 40, 170, 140), fill=(215, 35, 35))
    scores = runner.embed_images([np.asarray(image)]) @ prompt_embeds.T
    assert PROMPTS[int(scores.argmax())] == "a photo of a red circle"


def test_fresh_one_shape_scenes_are_classified(runner: ClipRunner, prompt_embeds: np.ndarray) -> None:
    rng = np.random.default_rng(5151)  # not a training, validation or evaluation seed
    scenes = [sw.random_scene(rng, n_shapes=1) for _ in range(30)]
    images = [np.asarray(sw.render(s)) for s in scenes]
    predicted = (runner.embed_images(images) @ prompt_embeds.T).argmax(1)
    truth = [LABELS.index((s.shapes[0].colour, s.shapes[0].kind)) for s in scenes]
    assert np.mean(predicted == np.array(truth)) >= 0.9
