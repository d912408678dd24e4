"""A failing Hailo load is classified right on every release profile of the HailoRT double (issue 10).

HailoBackend loads in this process on the double mimicking 5.0.1, 5.1.0, 5.1.1 and 5.2.0: a bad VLM
HEF and another model's KV cache fail VLM(...) with a raw native exception that
`except hailo_platform.HailoRTException` misses before 5.2.0 (and 5.2.0 drops the session instead of
answering); optimize_memory_on_device with the HEF already on the device is a configuration error,
never "busy". Only the backend's public API is used, so the same file runs against older code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, import_version
from hailo_double_tools import HeldDevice
from hailo_double_tools.hef_files import put_hef_on_server
from hailo_double_tools.settings import SESSION_DROP_VAR

from npu_worker.backend import DeviceBusyError, ModelLoadError
from npu_worker.config import ClipConfig, Config, HailoConfig, ModelConfig
from npu_worker.hailo.backend import HailoBackend

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
RELEASES = ["5.0.1", "5.1.0", "5.1.1", "5.2.0"]


@pytest.fixture(params=RELEASES)
def release(request: pytest.FixtureRequest, hailo_env: HailoEnv) -> Iterator[str]:
    """hailo_platform re-imported as one release; holders started with hailo_env.subprocess_env match."""
    hailo_env.settings["HAILO_DOUBLE_VERSION"] = request.param
    import_version(request.param)
    yield request.param
    import_version("5.2.0")


def backend(vlm_hef: Path, **hailo: object) -> HailoBackend:
    return HailoBackend(
        Config(
            backend="hailo",
            model=ModelConfig(path=str(DEMO_VLM_DIR), warmup=False),
            clip=ClipConfig(enabled=False, path=str(DEMO_CLIP_DIR)),
            hailo=HailoConfig(vlm_hef=str(vlm_hef), **hailo),  # type: ignore[arg-type]
        )
    )


def test_a_bad_vlm_hef_is_a_load_error_naming_it_on_every_release(
    release: str, hailo_env: HailoEnv, demo_vlm_hef: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "download.hef"
    garbage.write_bytes(b"<html>404</html>")
    with pytest.raises(ModelLoadError) as raised:
        backend(garbage).load()
    assert f"{garbage}: HailoRT cannot load this VLM HEF" in raised.value.message
    assert "status 92 HAILO_HEF_NOT_SUPPORTED" in raised.value.message
    loaded = backend(demo_vlm_hef)
    loaded.load()  # the failed load left nothing holding the device
    loaded.unload()


def test_another_models_kv_cache_is_busy_until_it_goes_on_every_release(
    release: str, hailo_env: HailoEnv, demo_vlm_hef: Path
) -> None:
    loading = backend(demo_vlm_hef)
    with HeldDevice(group="SHARED", kv_cache=True, env=hailo_env.subprocess_env()) as holder:
        with pytest.raises(DeviceBusyError) as raised:
            loading.load()
        message = raised.value.message
        assert "its GenAI KV cache is taken by another LLM/VLM" in message
        assert f"held by pid {holder.pid}" in message
        status = "62 HAILO_COMMUNICATION_CLOSED" if release == "5.2.0" else "6 HAILO_INVALID_OPERATION"
        assert f"HailoRTStatusException: status {status} at VLM creation" in message
        holder.stop()
    loading.load()
    assert loading.describe()[0].id == "qwen2-vl-demo"
    loading.unload()


def test_on_5_2_a_session_dropped_by_timeout_reads_as_busy_too(
    hailo_env: HailoEnv, demo_vlm_hef: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SESSION_DROP_VAR, "4")
    with (
        HeldDevice(group="SHARED", kv_cache=True, env=hailo_env.subprocess_env()),
        pytest.raises(DeviceBusyError) as raised,
    ):
        backend(demo_vlm_hef).load()
    assert "status 4 HAILO_TIMEOUT at VLM creation" in raised.value.message


def test_optimize_memory_with_the_hef_on_the_device_is_a_configuration_error_even_while_held(
    release: str, hailo_env: HailoEnv, demo_vlm_hef: Path
) -> None:
    """HAILO_INVALID_OPERATION (5.2.0) / HAILO_NOT_AVAILABLE (5.1.x) here is a setting, not busy."""
    put_hef_on_server(demo_vlm_hef, hailo_env.state_dir)
    optimizing = backend(demo_vlm_hef, optimize_memory_on_device=True)
    if release == "5.0.1":  # no such argument: ignored, the load works
        optimizing.load()
        optimizing.unload()
        return
    with HeldDevice(group="SHARED", env=hailo_env.subprocess_env()), pytest.raises(ModelLoadError) as raised:
        optimizing.load()  # another process holds the device (not its KV cache): still no retry
    status = "6 HAILO_INVALID_OPERATION" if release == "5.2.0" else "65 HAILO_NOT_AVAILABLE"
    assert f"HailoRT refused the VLM: HailoRTStatusException: status {status}" in raised.value.message
    assert "set hailo.optimize_memory_on_device: false" in raised.value.message
