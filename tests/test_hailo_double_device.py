"""The HailoRT double shares, files and reports like HailoRT 5.x: device locks, HEFs, CLIP, versions.

Real ONNX Runtime on the demo models, real processes and real flock(2) locks for device sharing.
Generation semantics are in test_hailo_double.py.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import shapes_world as sw
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, import_version
from hailo_double_tools import HeldDevice, make_llm_hef
from hailo_double_tools.settings import TEMPERATURE_VAR, VERSION_VAR
from hailo_platform import Device, FormatType, HailoRTException, VDevice
from hailo_platform.genai import LLM, VLM
from hailo_platform.pyhailort._pyhailort import HailoRTStatusException, VDeviceParams
from hailo_platform.pyhailort.pyhailort import (
    HailoRTInvalidHEFException,
    HailoRTInvalidOperationException,
    HailoRTNotFoundException,
)

from npu_worker.cpu.clip_runner import ClipRunner

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
BUSY = "libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)"


def shared_params(group: str = "SHARED") -> VDeviceParams:
    params = VDevice.create_params()
    params.group_id = group
    return params


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
    # raw status (the real constructors are not wrapped): 5.2.0's server drops the session, see README
    assert raised.value.args == ("62",)
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
        with pytest.raises(HailoRTStatusException, match=r"^62$"):  # the KV cache: session dropped
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
