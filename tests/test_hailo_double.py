"""The HailoRT double generates like HailoRT 5.x where the Hailo backend depends on it.

Real ONNX Runtime on the demo model. Device sharing, HEF files, CLIP and versions are in
test_hailo_double_device.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapes_world as sw
from hailo_double import DEMO_VLM_DIR
from hailo_double_tools import journal, make_vlm_hef, never_stopping
from hailo_double_tools.device_sampling import DeviceSampler
from hailo_double_tools.settings import STATE_DIR_VAR, TOKEN_DELAY_VAR
from hailo_platform import HailoRTException, VDevice
from hailo_platform.genai import VLM
from hailo_platform.pyhailort._pyhailort import LLMGeneratorCompletionStatus
from hailo_platform.pyhailort.pyhailort import (
    HailoRTInvalidArgumentException,
    HailoRTInvalidOperationException,
)

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart, Token
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

pytest_plugins = ["hailo_double.fixtures"]
Status = LLMGeneratorCompletionStatus


def chat(question: str, images: int = 1, system: str | None = None) -> list[dict]:
    turns = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    content = [{"type": "image"}] * images + [{"type": "text", "text": question}]
    return [*turns, {"role": "user", "content": content}]


def scene_frame(seed: int = 7) -> tuple[np.ndarray, sw.Scene]:
    scene = sw.random_scene(np.random.default_rng(seed), n_shapes=1, size=(112, 112))
    return np.ascontiguousarray(np.asarray(sw.render(scene))), scene


def calls_since(mark: int, event: str) -> list[dict]:
    return [e for e in journal.JOURNAL[mark:] if e["event"] == event]


@pytest.fixture(scope="module")
def vlm(tmp_path_factory: pytest.TempPathFactory, demo_vlm_hef: Path) -> Iterator[VLM]:
    """One VLM on its own simulated device for the generation tests (each starts from a clear context)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_DIR_VAR, str(tmp_path_factory.mktemp("vlm-device")))
        params = VDevice.create_params()
        params.group_id = "SHARED"  # as the Hailo backend opens it
        with VDevice(params) as vdevice, VLM(vdevice, str(demo_vlm_hef)) as model:
            yield model


@pytest.fixture
def fresh_vlm(vlm: VLM) -> VLM:
    vlm.clear_context()
    return vlm


# ----- generation semantics ---------------------------------------------------------------------------


def test_greedy_answer_equals_the_cpu_runner_and_ends_with_im_end(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    question = sw.QUESTIONS["colour"]
    runner = Qwen2VLRunner(DEMO_VLM_DIR, threads=1)
    events = runner.generate(
        [Message("user", (ImagePart(frame), TextPart(question)))], SamplingParams(temperature=0)
    )
    expected = "".join(e.text for e in events if isinstance(e, Token))
    with fresh_vlm.generate(chat(question), [frame], do_sample=False, max_generated_tokens=30) as gen:
        tokens = list(gen)
        assert gen.generation_status is Status.LOGICAL_END_OF_GENERATION
    assert all(isinstance(t, str) for t in tokens) and len(tokens) > 1
    assert tokens[-1] == "<|im_end|>"
    assert "".join(tokens[:-1]) == expected


def test_max_tokens_ends_with_the_recovery_sequence(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    with fresh_vlm.generate(chat("How many shapes are there?"), [frame], max_generated_tokens=2) as gen:
        first = gen.read()
        assert gen.generation_status is Status.GENERATING
        rest = gen.read_all()
        assert gen.generation_status is Status.MAX_TOKENS_REACHED
        with pytest.raises(HailoRTInvalidOperationException):
            gen.read()
    assert first and rest.endswith("<|im_end|>")
    assert fresh_vlm.get_context_usage_size() > 16  # prompt, 16 image tokens, answer


def test_leaving_the_with_block_aborts_the_running_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a HEF whose answers never end, so the generation is running when the block is left however
    short the demo model's answers are."""
    monkeypatch.setenv(STATE_DIR_VAR, str(tmp_path / "device"))
    monkeypatch.setenv(TOKEN_DELAY_VAR, "0.05")
    hef = never_stopping(make_vlm_hef(tmp_path, DEMO_VLM_DIR))
    frame, _ = scene_frame()
    params = VDevice.create_params()
    params.group_id = "SHARED"
    with VDevice(params) as vdevice, VLM(vdevice, str(hef)) as model:
        mark = len(journal.JOURNAL)
        with model.generate(chat("What shape is this?"), [frame], max_generated_tokens=200) as gen:
            assert isinstance(gen.read(), str)
        (ended,) = calls_since(mark, "generation_ended")
        assert ended["released_while_generating"] and ended["device_status"] == "ABORTED"
        assert ended["tokens_generated"] < 200
        monkeypatch.setenv(TOKEN_DELAY_VAR, "0")
        assert model.generate_all(chat("What shape is this?"), [frame], max_generated_tokens=3)


def test_every_generate_call_is_journaled_with_its_arguments(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    mark = len(journal.JOURNAL)
    fresh_vlm.generate_all(
        chat("What color is the shape?"), [frame], temperature=0.7, top_p=0.9, top_k=5,
        frequency_penalty=1.2, max_generated_tokens=4, do_sample=True, seed=3,
    )  # fmt: skip
    (call,) = calls_since(mark, "generate")
    assert call["args"] == {
        "temperature": 0.7, "top_p": 0.9, "top_k": 5, "frequency_penalty": 1.2,
        "max_generated_tokens": 4, "do_sample": True, "seed": 3,
    }  # fmt: skip
    assert call["frames"] == [{"shape": [112, 112, 3], "dtype": "uint8", "c_contiguous": True}]
    assert "<|vision_start|><|image_pad|><|vision_end|>What color is the shape?" in call["rendered_prompt"]
    assert call["params"]["top_k"] == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 0.0},
        {"temperature": 0.0, "do_sample": False},
        {"top_k": 0},
        {"frequency_penalty": 0.0},
    ],
)
def test_invalid_sampling_values_are_refused_like_the_device(fresh_vlm: VLM, bad: dict) -> None:
    frame, _ = scene_frame()
    with pytest.raises(HailoRTInvalidArgumentException, match="Invalid argument"):
        fresh_vlm.generate(chat("What color is the shape?"), [frame], **bad)
    with pytest.raises(TypeError):
        fresh_vlm.generate(chat("What color is the shape?"), [frame], top_k=-1)


def test_image_count_mismatch_fails_at_the_first_read(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    for prompt, frames in ((chat("Compare them.", images=2), [frame]), ("What color is the shape?", [frame])):
        with fresh_vlm.generate(prompt, frames) as gen, pytest.raises(HailoRTInvalidOperationException):
            gen.read()


def test_frames_must_have_the_exact_shape_dtype_and_layout(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    wide = np.zeros((112, 224, 3), np.uint8)[:, :112]
    for bad in (frame.reshape(224, 56, 3), frame.astype(np.float32)[..., 0], wide, frame[:56]):
        with pytest.raises(HailoRTInvalidOperationException):
            fresh_vlm.generate(chat("What color is the shape?"), [bad])
    with pytest.raises(HailoRTException, match="frames must be a list"):
        fresh_vlm.generate(chat("What color is the shape?"), (frame,))
    assert fresh_vlm.input_frame_shape() == [112, 112, 3]
    assert fresh_vlm.input_frame_format_type() == np.uint8 and fresh_vlm.input_frame_size() == 112 * 112 * 3


def test_system_messages_only_on_a_fresh_context_which_persists(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    mark = len(journal.JOURNAL)
    fresh_vlm.generate_all(
        chat("What color is the shape?", system="Be brief."), [frame], max_generated_tokens=4
    )
    used = fresh_vlm.get_context_usage_size()
    with pytest.raises(HailoRTInvalidOperationException):
        fresh_vlm.generate(chat("And now?", images=0, system="Be brief."), [])
    fresh_vlm.generate_all(chat("How many shapes are there?", images=0), [], max_generated_tokens=4)
    assert fresh_vlm.get_context_usage_size() > used
    first, follow_up = calls_since(mark, "generate")[0], calls_since(mark, "generate")[-1]
    assert first["rendered_prompt"].startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert follow_up["rendered_prompt"].startswith("<|im_start|>user\nHow many shapes")
    fresh_vlm.clear_context()
    assert fresh_vlm.get_context_usage_size() == 0
    fresh_vlm.generate_all(
        chat("What color is the shape?", system="Be brief."), [frame], max_generated_tokens=2
    )


def test_saved_context_continues_exactly_like_the_original(fresh_vlm: VLM) -> None:
    frame, _ = scene_frame()
    fresh_vlm.generate_all(chat("What color is the shape?"), [frame], do_sample=False, max_generated_tokens=6)
    saved, used = fresh_vlm.save_context(), fresh_vlm.get_context_usage_size()
    follow = chat("What shape is this?", images=0)
    original = fresh_vlm.generate_all(follow, [], do_sample=False, max_generated_tokens=6)
    fresh_vlm.clear_context()
    fresh_vlm.load_context(saved)
    assert fresh_vlm.get_context_usage_size() == used
    fresh_vlm.generate_all(chat("Hi", images=0), [], max_generated_tokens=1)  # template state: not first
    fresh_vlm.load_context(saved)
    assert fresh_vlm.generate_all(follow, [], do_sample=False, max_generated_tokens=6) == original


def test_tokenize_stop_tokens_and_recovery_sequence(fresh_vlm: VLM) -> None:
    text = "What color is the shape?"
    ids = fresh_vlm.tokenize(text)
    assert all(isinstance(i, int) for i in ids)
    assert Qwen2VLRunner(DEMO_VLM_DIR, threads=1).tokenizer.decode(ids) == text
    assert fresh_vlm.get_stop_tokens() == ["<|im_end|>", "<|endoftext|>"]
    assert fresh_vlm.get_generation_recovery_sequence() == "<|im_end|>"
    assert "<|im_start|>" in fresh_vlm.prompt_template()
    fresh_vlm.set_stop_tokens([" shape"])
    try:
        assert fresh_vlm.get_stop_tokens() == [" shape"]
    finally:
        fresh_vlm.set_stop_tokens(["<|im_end|>", "<|endoftext|>"])


def test_device_sampling_penalises_generated_tokens_multiplicatively() -> None:
    logits = np.array([2.0, 1.9, -1.0, -1.1], np.float32)
    greedy = DeviceSampler(1.0, 1.0, 4, 1.1, False, None)
    assert greedy.choose(logits, set()) == 0
    assert greedy.choose(logits, {0}) == 1  # 2.0 / 1.1 < 1.9
    assert (
        DeviceSampler(1.0, 1.0, 4, 1.2, False, None).choose(np.array([-1.0, -1.1]), {0}) == 1
    )  # -1.2 < -1.1
    one = DeviceSampler(5.0, 1.0, 1, 1.0, True, 0)
    assert {one.choose(logits, set()) for _ in range(20)} == {0}  # top_k 1 keeps the best only
    draws = [DeviceSampler(10.0, 1.0, 4, 1.0, True, 42).choose(logits, set()) for _ in range(3)]
    assert len(set(draws)) == 1  # the same seed, the same token
