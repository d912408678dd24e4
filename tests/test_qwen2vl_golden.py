"""The ONNX Runtime Qwen2-VL runner reproduces transformers on the committed demo model, pictures and
clips (temporal patches, video grids, M-RoPE positions and video pads) alike.

Every expected value comes from tests/golden/qwen2vl (computed with transformers by
models/make_demo_vlm.py), so the tests hold for whichever export is committed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npu_worker.backend import Finish, ImagePart, Message, SamplingParams, TextPart, Token, VideoPart
from npu_worker.cpu.qwen2vl_image import preprocess_clips, preprocess_images
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner
from npu_worker.images import as_rgb_array

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models" / "demo" / "qwen2-vl-demo"
GOLDEN_DIR = ROOT / "tests" / "golden" / "qwen2vl"
CASES = {case["name"]: case for case in json.loads((GOLDEN_DIR / "cases.json").read_text())}


@pytest.fixture(scope="module")
def runner() -> Qwen2VLRunner:
    return Qwen2VLRunner(MODEL_DIR)


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / "arrays.npz") as data:
        return dict(data)


def _pixels(name: str) -> np.ndarray:
    return as_rgb_array(Image.open(GOLDEN_DIR / name))


def _part(part: dict) -> ImagePart | VideoPart | TextPart:
    if part["type"] == "image":
        return ImagePart(_pixels(part["image"]))
    if part["type"] == "video":
        return VideoPart(tuple(_pixels(frame) for frame in part["video"]))
    return TextPart(part["text"])


def golden_messages(case: dict) -> list[Message]:
    """The case's HF-style messages as backend Messages, images and clip frames from the fixture PNGs."""
    return [Message(m["role"], tuple(_part(p) for p in m["content"])) for m in case["messages"]]


def positions(runner: Qwen2VLRunner, case: dict) -> tuple[np.ndarray, int]:
    return runner.rope_positions(runner.prompts.build(golden_messages(case)))


@pytest.fixture(params=sorted(CASES))
def case(request) -> dict:
    return CASES[request.param]


def test_chat_template_renders_the_prompt_transformers_renders(runner, case):
    assert runner.prompts.template.render(golden_messages(case)) == case["prompt"]


def test_input_ids_with_expanded_image_pads_equal_the_processors(runner, case, arrays):
    prompt = runner.prompts.build(golden_messages(case))
    np.testing.assert_array_equal(prompt.input_ids, arrays[f"{case['name']}/input_ids"])
    assert runner.count_tokens(golden_messages(case)) == arrays[f"{case['name']}/input_ids"].size


def test_pixel_values_and_grids_equal_the_hf_image_processor(runner, case, arrays):
    images = [image for message in golden_messages(case) for image in message.images]
    if not images:
        assert f"{case['name']}/pixel_values" not in arrays
        return
    pixel_values, grids = preprocess_images(images, runner.image_config)
    np.testing.assert_array_equal(grids, arrays[f"{case['name']}/image_grid_thw"])
    np.testing.assert_allclose(pixel_values, arrays[f"{case['name']}/pixel_values"], rtol=0, atol=1e-5)


def test_clip_pixel_values_and_grids_equal_the_fixtures(runner, case, arrays):
    clips = [clip for message in golden_messages(case) for clip in message.videos]
    if not clips:
        assert f"{case['name']}/pixel_values_videos" not in arrays
        return
    pixel_values, grids = preprocess_clips(clips, runner.image_config)
    np.testing.assert_array_equal(grids, arrays[f"{case['name']}/video_grid_thw"])
    np.testing.assert_allclose(pixel_values, arrays[f"{case['name']}/pixel_values_videos"], rtol=0, atol=1e-5)


def test_rope_positions_and_delta_equal_get_rope_index(runner, case, arrays):
    found, delta = positions(runner, case)
    np.testing.assert_array_equal(found, arrays[f"{case['name']}/position_ids"][:, 0, :])
    assert delta == int(arrays[f"{case['name']}/rope_deltas"].item())


def test_first_step_logits_equal_transformers(runner, case, arrays):
    prompt = runner.prompts.build(golden_messages(case))
    found, _ = positions(runner, case)
    _, logits = runner.decoder.start(runner.prompt_embeddings(prompt), found[:, None, :])
    np.testing.assert_allclose(logits, arrays[f"{case['name']}/last_logits"], rtol=0, atol=1e-4)


def test_greedy_generation_equals_transformers_generate(runner, case, arrays):
    expected_ids = arrays[f"{case['name']}/generated_ids"].tolist()
    params = SamplingParams(temperature=0, max_tokens=case["max_new_tokens"])
    events = list(runner.generate(golden_messages(case), params))
    tokens = [e for e in events if isinstance(e, Token)]
    finish = events[-1]
    assert isinstance(finish, Finish) and all(isinstance(e, Token) for e in events[:-1])
    assert [t.token_id for t in tokens] == expected_ids
    assert "".join(t.text for t in tokens) == case["generated_text"]
    stopped = expected_ids[-1] in runner.config.eos_token_ids
    assert finish.reason == ("stop" if stopped else "length")
    assert finish.prompt_tokens == arrays[f"{case['name']}/input_ids"].size
    assert finish.completion_tokens == len(expected_ids)
