"""The HailoRT double differs per release where HailoRT does (tests/hailo_double/README.md has the sources).

Exception hierarchy (5.0.1-5.1.1: the native status exception is no HailoRTException), how a second
GenAI model is refused (5.2.0: the session is dropped), optimize_memory_on_device with the HEF already
on the device, Text2Image (5.1.0 only), 16-bit CLIP outputs, NUL-padded board fields, and the device
node the holder scan finds.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hailo_double import DEMO_CLIP_DIR, import_version
from hailo_double_tools import HeldDevice, make_clip_hef
from hailo_double_tools.hef_files import put_hef_on_server
from hailo_double_tools.settings import SESSION_DROP_VAR

from npu_worker.hailo.holders import scan_holders

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
OLDER = ["5.0.1", "5.1.0", "5.1.1"]


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    import_version("5.2.0")


def release(version: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    """hailo_platform, hailo_platform.genai and the bindings module of `version`."""
    platform = import_version(version)
    genai = importlib.import_module("hailo_platform.genai")
    return platform, genai, importlib.import_module("hailo_platform.pyhailort._pyhailort")


def shared(platform: ModuleType) -> Any:
    params = platform.VDevice.create_params()
    params.group_id = "SHARED"
    return platform.VDevice(params)


@pytest.mark.parametrize("version", OLDER)
def test_before_5_2_the_native_status_exception_is_no_hailort_exception(
    hailo_env: HailoEnv, tmp_path: Path, version: str, restore: None
) -> None:
    platform, genai, native = release(version)
    assert native.HailoRTStatusException.__bases__ == (Exception,)
    assert native.HailoRTCustomException.__bases__ == (Exception,)
    assert platform.HailoRTException is not native.HailoRTException
    wrapped = importlib.import_module("hailo_platform.pyhailort.pyhailort").HailoRTInvalidHEFException
    assert issubclass(wrapped, platform.HailoRTException)
    garbage = tmp_path / "garbage.hef"
    garbage.write_bytes(b"\x01\x02 not a hef")
    with platform.VDevice() as vdevice:
        with pytest.raises(native.HailoRTStatusException) as raised:
            genai.VLM(vdevice, str(garbage))
        assert raised.value.args == ("92",)
        assert not isinstance(raised.value, platform.HailoRTException)  # `except HailoRTException` misses it
        with pytest.raises(platform.HailoRTException, match=r"error: 13 \(HAILO_OPEN_FILE_FAILURE\)"):
            vdevice.create_infer_model(str(tmp_path / "missing.hef"))  # wrapped: the Python class


def test_from_5_2_the_native_exceptions_are_hailort_exceptions(hailo_env: HailoEnv, restore: None) -> None:
    platform, _, native = release("5.2.0")
    assert platform.HailoRTException is native.HailoRTException
    assert issubclass(native.HailoRTStatusException, platform.HailoRTException)
    assert issubclass(native.HailoRTCustomException, platform.HailoRTException)


@pytest.mark.parametrize("version", [*OLDER, "5.2.0"])
def test_a_second_kv_cache_is_refused_as_each_release_does(
    hailo_env: HailoEnv, demo_vlm_hef: Path, version: str, restore: None, caplog: pytest.LogCaptureFixture
) -> None:
    platform, genai, native = release(version)
    env = hailo_env.subprocess_env(HAILO_DOUBLE_VERSION=version)
    with (
        HeldDevice(group="SHARED", kv_cache=True, env=env),
        shared(platform) as vdevice,
        pytest.raises(native.HailoRTStatusException) as raised,
    ):
        genai.VLM(vdevice, str(demo_vlm_hef))
    # 5.2.0's server drops the session (the client reads 62); before, the double answers 6 (inferred)
    assert raised.value.args == (("62",) if version == "5.2.0" else ("6",))
    assert "KV-Cache is already in use by another model" in caplog.text


def test_on_5_2_a_dropped_session_may_also_read_as_a_timeout(
    hailo_env: HailoEnv, demo_vlm_hef: Path, monkeypatch: pytest.MonkeyPatch, restore: None
) -> None:
    monkeypatch.setenv(SESSION_DROP_VAR, "4")
    platform, genai, native = release("5.2.0")
    with (
        HeldDevice(group="SHARED", kv_cache=True, env=hailo_env.subprocess_env()),
        shared(platform) as vdevice,
        pytest.raises(native.HailoRTStatusException, match=r"^4$"),
    ):
        genai.VLM(vdevice, str(demo_vlm_hef))


@pytest.mark.parametrize(("version", "status"), [("5.1.0", "65"), ("5.1.1", "65"), ("5.2.0", "6")])
def test_optimize_memory_with_the_hef_already_on_the_device_fails(
    hailo_env: HailoEnv, demo_vlm_hef: Path, tmp_path: Path, version: str, status: str, restore: None
) -> None:
    platform, genai, native = release(version)
    put_hef_on_server(demo_vlm_hef, hailo_env.state_dir)
    with shared(platform) as vdevice:
        with pytest.raises(native.HailoRTStatusException) as raised:
            genai.VLM(vdevice, str(demo_vlm_hef), optimize_memory_on_device=True)
        assert raised.value.args == (status,)
        with genai.VLM(vdevice, str(demo_vlm_hef)) as vlm:  # without it, the HEF on the device is fine
            assert vlm.input_frame_shape() == [112, 112, 3]


@pytest.mark.parametrize("version", ["5.0.1", "5.1.0", "5.1.1", "5.2.0"])
def test_text2image_exists_in_5_1_0_only_and_never_loads(
    hailo_env: HailoEnv, demo_vlm_hef: Path, tmp_path: Path, version: str, restore: None
) -> None:
    platform, genai, native = release(version)
    pyhailort = importlib.import_module("hailo_platform.pyhailort.pyhailort")
    assert (
        hasattr(genai, "Text2Image")
        == hasattr(pyhailort, "HailoDiffuserSchedulerType")
        == (version == "5.1.0")
    )
    if version != "5.1.0":
        return
    assert "Text2Image" in genai.__all__
    with platform.VDevice() as vdevice:
        for hefs, status in (((tmp_path / "missing.hef",) * 3, "13"), ((demo_vlm_hef,) * 3, "26")):
            with pytest.raises(native.HailoRTStatusException) as raised:  # not wrapped, like VLM(...)
                genai.Text2Image(vdevice, *map(str, hefs), pyhailort.HailoDiffuserSchedulerType.DDIM)
            assert raised.value.args == (status,)


def run_encoder(platform: ModuleType, hef: Path, output: Any) -> tuple[np.ndarray, Any]:
    """One frame through the CLIP double HEF; `output`: the format type to ask for, None for the default."""
    with platform.VDevice() as vdevice:
        model = vdevice.create_infer_model(str(hef))
        stream = model.output()
        if output is not None:
            stream.set_format_type(output)
        dtype = {"UINT8": np.uint8, "UINT16": np.uint16, "FLOAT32": np.float32}[stream.format.type.name]
        out = np.empty(stream.shape, dtype)
        with model.configure() as configured:
            bindings = configured.create_bindings()
            bindings.input().set_buffer(np.full((96, 96, 3), 90, np.uint8))
            bindings.output().set_buffer(out)
            configured.run([bindings], 10_000)
        return out, stream.quant_infos[0]


def test_a_16_bit_clip_output_reads_as_uint16_and_never_as_uint8(
    hailo_env: HailoEnv, demo_clip_hef: Path, tmp_path: Path, restore: None
) -> None:
    platform = import_version("5.1.1")
    wide = make_clip_hef(tmp_path, DEMO_CLIP_DIR, bits=16)
    codes, quant = run_encoder(platform, wide, None)
    floats, _ = run_encoder(platform, wide, platform.FormatType.FLOAT32)
    assert codes.dtype == np.uint16 and quant.qp_zp == 32768.0
    np.testing.assert_allclose((codes.astype(np.float32) - quant.qp_zp) * quant.qp_scale, floats, atol=1e-6)
    assert codes.max() > 255  # really 16-bit codes
    pyhailort = importlib.import_module("hailo_platform.pyhailort.pyhailort")
    with pytest.raises(pyhailort.HailoRTInvalidArgumentException):  # transform.cpp refuses 16 -> 8 bits
        run_encoder(platform, wide, platform.FormatType.UINT8)
    narrow_codes, _ = run_encoder(platform, demo_clip_hef, platform.FormatType.UINT16)  # 8 -> 16: a cast
    plain, _ = run_encoder(platform, demo_clip_hef, None)
    assert narrow_codes.dtype == np.uint16 and np.array_equal(narrow_codes, plain)


def test_board_fields_come_nul_padded_as_the_device_sends_them(hailo_env: HailoEnv) -> None:
    from hailo_platform import Device

    board = Device(Device.scan()[0]).control.identify()
    assert board.board_name == "Hailo-10H" + "\0" * 23  # HAILO_MAX_BOARD_NAME_LENGTH 32
    assert "Board Name: Hailo-10H\n" in str(board)  # pyhailort.py strips them only to print


def test_a_process_holding_the_device_keeps_its_node_open_for_the_holder_scan(hailo_env: HailoEnv) -> None:
    with HeldDevice(group="UNIQUE", env=hailo_env.subprocess_env()) as holder:
        assert [h.pid for h in scan_holders().holders] == [holder.pid]
    assert scan_holders().holders == ()
