"""The trained demo VLM sees: on fresh one-shape scenes it names the colour and the shape.

Only meaningful with the fully trained export; the scenes are drawn with a fixed seed that the
training script never uses (it trains on seed 1234 and evaluates on 987654321).
"""

from pathlib import Path

import numpy as np
import pytest
import shapes_world as sw

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart, Token
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo" / "qwen2-vl-demo"
SCENE_SEED = 31_415
N_SCENES = 30


@pytest.fixture(scope="module")
def runner() -> Qwen2VLRunner:
    return Qwen2VLRunner(MODEL_DIR)


def reply(runner: Qwen2VLRunner, image: np.ndarray, question: str) -> str:
    messages = [Message("user", (ImagePart(image), TextPart(question)))]
    events = runner.generate(messages, SamplingParams(temperature=0, max_tokens=16))
    return "".join(e.text for e in events if isinstance(e, Token))


def test_colour_and_shape_of_fresh_scenes_are_named_correctly(runner):
    rng = np.random.default_rng(SCENE_SEED)
    right, wrong = 0, []
    for _ in range(N_SCENES):
        scene = sw.random_scene(rng, n_shapes=1)
        image = np.asarray(sw.roundtrip(sw.render(scene), rng))
        for kind in ("colour", "shape"):
            answer = reply(runner, image, sw.QUESTIONS[kind])
            if sw.is_correct(answer, sw.answer(scene, kind)):
                right += 1
            else:
                wrong.append((kind, sw.answer(scene, kind), answer))
    assert right / (2 * N_SCENES) >= 0.9, f"{right}/{2 * N_SCENES} right; wrong: {wrong[:10]}"
