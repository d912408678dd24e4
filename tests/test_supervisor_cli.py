"""`hailo-vision serve` start-up errors, and the private runtime directory the children share."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from supervisor_testkit import base_environment

from npu_worker.config import Config
from npu_worker.config_load import config_from_json
from supervisor.runtime import RuntimeDir, RuntimeDirError


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "supervisor.cli", "serve", *args]
    return subprocess.run(argv, env=base_environment(**env), capture_output=True, text=True, timeout=30)


def test_a_bad_value_in_the_config_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("api:\n  port: 99999\n")
    result = serve("--config", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "api.port" in result.stderr
    assert "TCP port" in result.stderr


def test_a_bad_environment_override_exits_2_naming_the_variable() -> None:
    result = serve(HAILO_VISION_SUPERVISOR_FLAP_DEATHS="many")
    assert result.returncode == 2
    assert "HAILO_VISION_SUPERVISOR_FLAP_DEATHS" in result.stderr


def test_a_misspelt_environment_variable_stops_the_start_naming_it() -> None:
    result = serve(HAILO_VISION_API_PROT="8080")  # PORT, misspelt: silently ignored, it would serve 11435
    assert result.returncode == 2
    assert "HAILO_VISION_API_PROT" in result.stderr and "names no configuration key" in result.stderr


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = serve("--config", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2
    assert "nowhere.yaml" in result.stderr and "does not exist" in result.stderr


def test_a_runtime_directory_in_use_by_another_supervisor_exits_1(tmp_path: Path) -> None:
    config = config_from_json(json.dumps({"supervisor": {"runtime_dir": str(tmp_path / "run")}}))
    with RuntimeDir(config):
        result = serve(HAILO_VISION_SUPERVISOR_RUNTIME_DIR=str(tmp_path / "run"))
    assert result.returncode == 1
    assert "another hailo-vision supervisor" in result.stderr


def test_a_created_runtime_directory_is_private_and_removed_at_exit(tmp_path: Path) -> None:
    config = config_from_json(json.dumps({"supervisor": {"runtime_dir": str(tmp_path / "run")}}))
    with RuntimeDir(config) as runtime:
        assert stat.S_IMODE(runtime.path.stat().st_mode) == 0o700
        assert stat.S_IMODE(runtime.config_file.stat().st_mode) == 0o600
        assert config_from_json(runtime.config_file.read_text()) == config
        with pytest.raises(RuntimeDirError, match="another hailo-vision supervisor"), RuntimeDir(config):
            pass
        assert runtime.config_file.is_file()  # the refused second supervisor left it alone
    assert not runtime.path.exists()


def test_systemds_runtime_directory_is_used_and_left_in_place(tmp_path: Path) -> None:
    systemd_dir = tmp_path / "hailo-vision"
    systemd_dir.mkdir(mode=0o755)
    with RuntimeDir(Config(), environ={"RUNTIME_DIRECTORY": str(systemd_dir)}) as runtime:
        assert runtime.path == systemd_dir
        assert stat.S_IMODE(systemd_dir.stat().st_mode) == 0o700
    assert systemd_dir.is_dir() and not (systemd_dir / "config.json").exists()
