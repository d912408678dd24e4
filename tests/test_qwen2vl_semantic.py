"""The trained demo VLM sees: on fresh one-shape scenes it names the colour and the shape, also in JSON.

Only meaningful with the fully trained export; the scenes are drawn with a fixed seed that the
training script never uses (it trains on seed 1234 and evaluates on 987654321).
"""

from pathlib import Path

import numpy as np
import pytest
import shapes_world as sw
from demo_vlm_data import JSON_QUESTIONS, JSON_SUFFIX

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart, Token
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.structured import JSON_HINT

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


# Share of 30 fresh scenes that must be answered right: 90 %, and the 80 % target for counting.
REQUIRED = {"colour": 0.9, "shape": 0.9, "count": 0.8}


@pytest.mark.parametrize("kind", list(REQUIRED))
def test_fresh_scenes_are_described_correctly(runner: Qwen2VLRunner, kind: str) -> None:
    """Colour and shape are asked about one-shape scenes, counting about 1-3 shapes."""
    rng = np.random.default_rng(SCENE_SEED)
    right, wrong = 0, []
    for _ in range(N_SCENES):
        scene = sw.random_scene(rng, n_shapes=None if kind == "count" else 1)
        image = np.asarray(sw.roundtrip(sw.render(scene), rng))
        answer = reply(runner, image, sw.QUESTIONS[kind])
        if sw.is_correct(answer, sw.answer(scene, kind)):
            right += 1
        else:
            wrong.append((sw.answer(scene, kind), answer))
    assert right / N_SCENES >= REQUIRED[kind], f"{kind}: {right}/{N_SCENES} right; wrong: {wrong[:10]}"


def test_the_json_hint_is_the_one_the_demo_model_learnt() -> None:
    assert f"\n{JSON_HINT}" == JSON_SUFFIX  # npu_worker/structured.py appends it to the last user turn


@pytest.mark.parametrize("kind", ["both", "count"])
def test_fresh_scenes_are_answered_in_json_when_asked(runner: Qwen2VLRunner, kind: str) -> None:
    """The question plus the JSON hint, answered unconstrained: the reply parses to the right object."""
    rng = np.random.default_rng(SCENE_SEED + 1)
    questions, fields = JSON_QUESTIONS[kind]
    right, wrong = 0, []
    for _ in range(N_SCENES):
        scene = sw.random_scene(rng, n_shapes=None if kind == "count" else 1)
        image = np.asarray(sw.roundtrip(sw.render(scene), rng))
        answer = reply(runner, image, questions[0] + JSON_SUFFIX)
        expected = sw.json_answer(scene, fields)
        right += sw.json_correct(answer, expected)
        if not sw.json_correct(answer, expected):
            wrong.append((expected, answer))
    assert right / N_SCENES >= 0.8, f"{kind}: {right}/{N_SCENES} right; wrong: {wrong[:10]}"
