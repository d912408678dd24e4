"""The HailoRT double behaves like HailoRT 5.x where the Hailo backend depends on it.

Real ONNX Runtime on the demo models, real processes and real flock(2) locks for device sharing.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import shapes_world as sw
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, import_version
from hailo_double_tools import HeldDevice, journal, make_llm_hef
from hailo_double_tools.device_sampling import DeviceSampler
from hailo_double_tools.settings import STATE_DIR_VAR, TEMPERATURE_VAR, TOKEN_DELAY_VAR, VERSION_VAR
from hailo_platform import Device, FormatType, HailoRTException, VDevice
from hailo_platform.genai import LLM, VLM
from hailo_platform.pyhailort._pyhailort import (
    HailoRTStatusException,
    LLMGeneratorCompletionStatus,
    VDeviceParams,
)
from hailo_platform.pyhailort.pyhailort import (
    HailoRTInvalidArgumentException,
    HailoRTInvalidHEFException,
    HailoRTInvalidOperationException,
    HailoRTNotFoundException,
)

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart, Token
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
Status = LLMGeneratorCompletionStatus
BUSY = "libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)"


def shared_params(group: str = "SHARED") -> VDeviceParams:
    params = VDevice.create_params()
    params.group_id = group
    return params


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
        with VDevice(shared_params()) as vdevice, VLM(vdevice, str(demo_vlm_hef)) as model:
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
    fresh_vlm: VLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_DELAY_VAR, "0.05")
    frame, _ = scene_frame()
    mark = len(journal.JOURNAL)
    with fresh_vlm.generate(chat("What shape is this?"), [frame], max_generated_tokens=200) as gen:
        assert isinstance(gen.read(), str)
    (ended,) = calls_since(mark, "generation_ended")
    assert ended["released_while_generating"] and ended["device_status"] == "ABORTED"
    assert ended["tokens_generated"] < 200
    monkeypatch.setenv(TOKEN_DELAY_VAR, "0")
    assert fresh_vlm.generate_all(chat("What shape is this?"), [frame], max_generated_tokens=3)


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


# ----- device sharing ----------------------------------------------------------------------------------


def test_unique_excludes_everyone_and_shared_groups_coexist(hailo_env: HailoEnv) -> None:
    with VDevice():
        for params in (None, shared_params()):
            with pytest.raises(HailoRTException) as raised:
                VDevice(params)
            assert str(raised.value) == BUSY
    with VDevice(shared_params()), VDevice(shared_params()):
        for params in (None, shared_params("OTHER")):
            with pytest.raises(HailoRTException, match="error: 74"):
                VDevice(params)
    VDevice().release()


def test_one_kv_cache_per_device_and_the_device_outlives_its_vdevice(
    hailo_env: HailoEnv,
    demo_vlm_hef: Path,
) -> None:
    vdevice = VDevice()
    first = VLM(vdevice, str(demo_vlm_hef))
    with pytest.raises(HailoRTStatusException) as raised:
        LLM(vdevice, str(make_llm_hef(hailo_env.state_dir, DEMO_VLM_DIR)))
    assert raised.value.args == ("6",)  # raw status: the real LLM/VLM constructors are not wrapped
    vdevice.release()
    with pytest.raises(HailoRTException, match="error: 74"):
        VDevice()  # the VLM keeps the released VDevice's device
    first.release()
    with VDevice() as again, VLM(again, str(demo_vlm_hef)) as second:
        assert second.max_context_capacity() == 2048


def test_another_process_holding_the_device_blocks_until_it_stops_or_dies(
    hailo_env: HailoEnv, demo_vlm_hef: Path
) -> None:
    with HeldDevice(group="UNIQUE", vlm=demo_vlm_hef, env=hailo_env.subprocess_env()) as ollama:
        for params in (None, shared_params()):  # UNIQUE waits first, SHARED fails at once: both 74
            with pytest.raises(HailoRTException) as raised:
                VDevice(params)
            assert str(raised.value) == BUSY
        with pytest.raises(RuntimeError, match="FAILED HailoRTException: libhailort failed with error: 74"):
            HeldDevice(group="SHARED", kv_cache=True, env=hailo_env.subprocess_env())
        ollama.stop()
    with VDevice() as vdevice, VLM(vdevice, str(demo_vlm_hef)) as vlm:
        assert vlm.max_context_capacity() == 2048
    with HeldDevice(group="SHARED", kv_cache=True, env=hailo_env.subprocess_env()) as holder:
        vdevice = VDevice(shared_params())
        with pytest.raises(HailoRTStatusException, match=r"^6$"):
            VLM(vdevice, str(demo_vlm_hef))
        holder.kill()
        with VLM(vdevice, str(demo_vlm_hef)) as vlm:
            assert vlm.generate_all("<|im_start|>user\nHi<|im_end|>\n", [], max_generated_tokens=2)
        vdevice.release()


# ----- HEF files and the CLIP InferModel ---------------------------------------------------------------


def test_bad_hef_files_fail_with_the_real_statuses(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.hef"
    garbage.write_bytes(b"\x01\x02not a hef")
    with VDevice() as vdevice:
        for path, status in (
            (tmp_path / "missing.hef", "13"),
            (garbage, "92"),
            (demo_clip_hef, "26"),
        ):
            with pytest.raises(HailoRTStatusException) as raised:
                VLM(vdevice, str(path))
            assert raised.value.args == (status,)
        with pytest.raises(
            HailoRTException, match=r"^libhailort failed with error: 13 \(HAILO_OPEN_FILE_FAILURE\)$"
        ):
            vdevice.create_infer_model(str(tmp_path / "missing.hef"))
        with pytest.raises(HailoRTInvalidHEFException):
            vdevice.create_infer_model(str(demo_vlm_hef))


def run_clip(
    vdevice: VDevice, hef: Path, frames: list[np.ndarray], float_output: bool
) -> tuple[np.ndarray, ...]:
    model = vdevice.create_infer_model(str(hef))
    model.set_batch_size(len(frames))
    if float_output:
        model.output().set_format_type(FormatType.FLOAT32)
    dtype = np.float32 if float_output else np.uint8
    outputs = [np.empty(model.output().shape, dtype) for _ in frames]
    with model.configure() as configured:
        bindings = [configured.create_bindings() for _ in frames]
        for binding, frame, out in zip(bindings, frames, outputs, strict=True):
            binding.input().set_buffer(frame)
            binding.output().set_buffer(out)
        configured.run(bindings, 10_000)
    return tuple(outputs)


def test_clip_quantized_and_float_outputs_agree_with_the_cpu_model(
    hailo_env: HailoEnv,
    demo_clip_hef: Path,
) -> None:
    rng = np.random.default_rng(3)
    frames = [
        np.ascontiguousarray(np.asarray(sw.render(sw.random_scene(rng, size=(96, 96))))) for _ in range(2)
    ]
    reference = ClipRunner(DEMO_CLIP_DIR, threads=1).embed_images(frames)
    with VDevice() as vdevice:
        codes = run_clip(vdevice, demo_clip_hef, frames, float_output=False)
        floats = run_clip(vdevice, demo_clip_hef, frames, float_output=True)
        quant = vdevice.create_infer_model(str(demo_clip_hef)).output().quant_infos[0]
    for code, value, ref in zip(codes, floats, reference, strict=True):
        assert code.dtype == np.uint8 and code.shape == (64,)
        np.testing.assert_allclose((code.astype(np.float32) - quant.qp_zp) * quant.qp_scale, value, atol=1e-6)
        assert np.abs(value - ref).max() <= quant.qp_scale / 2 + 1e-4


def test_clip_buffers_are_checked_and_async_jobs_call_back(hailo_env: HailoEnv, demo_clip_hef: Path) -> None:
    frame = np.zeros((96, 96, 3), np.uint8)
    with VDevice() as vdevice:
        model = vdevice.create_infer_model(str(demo_clip_hef))
        assert model.input_names == [model.input().name] and model.input().shape == [96, 96, 3]
        with pytest.raises(HailoRTNotFoundException):
            model.output("no-such-output")
        with model.configure() as configured:
            bindings = configured.create_bindings()
            with pytest.raises(HailoRTException, match="C_CONTIGUOUS"):
                bindings.input().set_buffer(np.zeros((96, 192, 3), np.uint8)[:, ::2])
            bindings.input().set_buffer(frame)
            with pytest.raises(HailoRTNotFoundException):
                configured.run([bindings], 1000)
            bindings.output().set_buffer(np.empty(64, np.float32))
            with pytest.raises(HailoRTInvalidOperationException):
                configured.run([bindings], 1000)
            out = np.zeros(64, np.uint8)
            bindings.output().set_buffer(out)
            seen = []
            configured.run_async(
                [bindings], lambda completion_info: seen.append(completion_info.exception)
            ).wait(5000)
    assert seen == [None] and out.any()


# ----- version mimicry and telemetry -------------------------------------------------------------------


def parameters(function: object) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def test_versions_change_signatures_and_features(monkeypatch: pytest.MonkeyPatch) -> None:
    sampling = [
        "temperature",
        "top_p",
        "top_k",
        "frequency_penalty",
        "max_generated_tokens",
        "do_sample",
        "seed",
    ]
    try:
        assert import_version("5.0.0").__version__ == "5.0.0"
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("hailo_platform.genai")
        import_version("5.0.1")
        genai = importlib.import_module("hailo_platform.genai")
        assert parameters(genai.VLM) == ["vdevice", "model_path"] and not hasattr(genai, "Speech2Text")
        assert parameters(genai.VLM.generate_all) == ["prompt", "frames", *sampling]
        assert not hasattr(genai.VLM, "get_context_usage_size")
        for version, timeout in (("5.1.0", 10000), ("5.1.1", 600000)):
            import_version(version)
            genai = importlib.import_module("hailo_platform.genai")
            assert parameters(genai.VLM) == ["vdevice", "model_path", "optimize_memory_on_device"]
            assert parameters(genai.VLM.generate) == ["prompt", "frames", *sampling]
            assert inspect.signature(genai.VLM.generate_all).parameters["timeout_ms"].default == timeout
            assert hasattr(genai.VLM, "save_context") == (version == "5.1.1")
            assert parameters(genai.Speech2Text) == ["vdevice", "model_path"]
        import_version("5.2.0")
        genai = importlib.import_module("hailo_platform.genai")
        assert parameters(genai.VLM.generate) == ["prompt", "frames", "videos", *sampling]
        assert parameters(genai.LLM.generate) == ["prompt", "tools", *sampling]
        assert parameters(genai.LLM) == ["vdevice", "model_path", "lora_name", "optimize_memory_on_device"]
        assert genai.VLM.__name__ == "VLM"
    finally:
        monkeypatch.setenv(VERSION_VAR, "5.2.0")
        import_version("5.2.0")


def test_device_scan_temperature_and_identity(hailo_env: HailoEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEMPERATURE_VAR, "61.5")
    (device_id,) = Device.scan()
    device = Device(device_id)
    reading = device.control.get_chip_temperature()
    assert (reading.ts0_temperature, reading.ts1_temperature) == (61.5, 62.0)
    board = device.control.identify()
    assert (board.firmware_version.major, board.firmware_version.minor) == (5, 2)
    assert str(board.device_architecture) == "HAILO10H"
    with VDevice() as vdevice:
        assert vdevice.get_physical_devices_ids() == [device_id]


def test_llm_generates_text_and_journal_reaches_files(hailo_env: HailoEnv) -> None:
    hef = make_llm_hef(hailo_env.state_dir, DEMO_VLM_DIR)
    with VDevice() as vdevice, LLM(vdevice, str(hef)) as llm:
        text = llm.generate_all([{"role": "user", "content": "Hi"}], max_generated_tokens=3, seed=1)
        assert isinstance(text, str) and text
        with pytest.raises(HailoRTInvalidOperationException):
            llm.generate([{"role": "user", "content": "Again"}], tools=[{"type": "function"}])
    first, refused = hailo_env.journal_entries("generate")
    assert first["kind"] == "llm" and first["args"] == {"max_generated_tokens": 3, "seed": 1}
    assert first["pid"] == os.getpid() and first["rendered_prompt"].endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "InvalidOperation" in refused["error"]
