"""`hailo-vision doctor` on this machine: no Hailo device, no HailoRT, real files and processes.

The doctor runs as a subprocess, as a user would run it. A regular file stands in for a device node
where a test needs one to exist, and a real process holding it open is found through /proc.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hailo_double import DEMO_VLM_DIR, DOUBLE_DIR
from hailo_double_tools import make_vlm_hef
from service import HAILO_VISION, ROOT

from npu_worker.hailo.holders import device_nodes, scan_holders

pytestmark = pytest.mark.skipif(bool(device_nodes()), reason="this machine has a Hailo device node")


def doctor(
    tmp_path: Path, config: dict | None = None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config or {}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HAILO_VISION_")}
    environ.pop("PYTHONPATH", None)
    environ.update(env)
    return subprocess.run(
        [str(HAILO_VISION), "doctor", "--config", str(path), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def lines(result: subprocess.CompletedProcess[str], level: str, topic: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{level:<4} {topic}:")]


def test_without_a_device_it_says_so_and_fails_with_fixes(tmp_path: Path) -> None:
    models = tmp_path / "vlm"
    models.mkdir()
    result = doctor(tmp_path, {"backend": "hailo", "model": {"path": str(models)}})
    assert result.returncode == 1
    assert lines(result, "FAIL", "device") == [
        "FAIL device: no Hailo device: /dev/hailo0 (or /dev/h1x-0) does not exist on this machine"
    ]
    out = result.stdout
    assert "sudo apt install dkms hailo-h10-all" in out
    assert "backend: onnx" in out  # the way to run without the NPU
    assert lines(result, "FAIL", "hailort")  # this .venv has no hailo_platform
    assert "--system-site-packages" in out
    (vlm_hef,) = lines(result, "FAIL", "vlm hef")
    assert str(models) in vlm_hef and "no .hef file" in vlm_hef
    assert "hailo.vlm_hef" in out
    # The CLIP text encoder of the demo export is there; the driver and holders need a device.
    assert lines(result, "OK", "clip text")
    assert not [line for line in out.splitlines() if line.split(":")[0].endswith((" driver", " in use"))]
    assert out.splitlines()[-1].endswith("to fix")


def test_hef_files_are_checked_on_disk_without_loading_them(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.hef", tmp_path / "bad.hef"
    good.write_bytes(b"\x01HEF" + bytes(60))
    bad.write_bytes(b"<html>not found</html>")
    config = {
        "backend": "hailo",
        "model": {"path": str(tmp_path)},
        "hailo": {"vlm_hef": "good.hef", "clip_hef": str(bad)},
    }
    result = doctor(tmp_path, config)
    (vlm,) = lines(result, "OK", "vlm hef")
    assert "HEF header valid; not loaded on the device" in vlm
    (clip,) = lines(result, "FAIL", "clip hef")
    assert f"{bad}: not a HEF file" in clip
    missing = doctor(tmp_path, {**config, "hailo": {"vlm_hef": "gone.hef"}})
    (line,) = lines(missing, "FAIL", "vlm hef")
    assert f"{tmp_path / 'gone.hef'}: HEF not found (set by hailo.vlm_hef)" in line


def test_a_configuration_error_is_a_finding(tmp_path: Path) -> None:
    result = doctor(tmp_path, {"hailo": {"clip_output": "int4"}})
    assert result.returncode == 1
    (line,) = lines(result, "FAIL", "config")
    assert "hailo.clip_output" in line and "float32, dequantize" in line


def test_the_onnx_backend_is_flagged(tmp_path: Path) -> None:
    result = doctor(tmp_path, {"backend": "onnx"})
    (line,) = lines(result, "WARN", "config")
    assert "backend is onnx" in line
    assert "set backend: hailo or auto" in result.stdout


def hold_open(path: Path, name: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process called `name` that keeps `path` open (a symlink to python gives it that name)."""
    program = tmp_path / name
    program.symlink_to(Path(sys.executable).resolve())
    code = f"import time; f = open({str(path)!r}); print('open', flush=True); time.sleep(60)"
    process = subprocess.Popen([str(program), "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"open\n"
    return process


def test_who_holds_the_device_is_named_with_the_hailo_ollama_unload_command(tmp_path: Path) -> None:
    node = tmp_path / "hailo0"
    node.write_bytes(b"")
    holder = hold_open(node, "hailo-ollama", tmp_path)
    try:
        scan = scan_holders([node])
        assert [(h.pid, h.name) for h in scan.holders] == [(holder.pid, "hailo-ollama")]
        result = doctor(tmp_path, {"backend": "hailo"}, "--device", str(node))
    finally:
        holder.kill()
        holder.wait()
    (device,) = lines(result, "WARN", "device")
    assert "not a character device" in device
    (held,) = lines(result, "WARN", "in use")
    assert f"held by hailo-ollama, pid {holder.pid} (hailo-ollama)" in held
    assert "curl -X POST http://localhost:8000/api/generate" in result.stdout
    assert '"keep_alive": 0' in result.stdout
    deadline = time.monotonic() + 5
    while scan_holders([node]).holders and time.monotonic() < deadline:
        time.sleep(0.05)
    free = doctor(tmp_path, {"backend": "hailo"}, "--device", str(node))
    assert lines(free, "OK", "in use")


def test_access_names_the_group_and_the_usermod_fix(tmp_path: Path) -> None:
    """A node the user may not open read-write: as root, the doctor runs as nobody to see it."""
    if os.getuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv to drop privileges")
    group = next(g for g in grp.getgrall() if g.gr_gid != 0 and "nobody" not in g.gr_mem)
    shared = Path(tempfile.mkdtemp(prefix="hailo-doctor-"))
    try:
        shared.chmod(0o755)
        node = shared / "hailo0"
        node.write_bytes(b"")
        if os.getuid() == 0:
            os.chown(node, 0, group.gr_gid)
        node.chmod(0o640)  # the group may only read: HailoRT needs read-write
        config = shared / "config.yaml"
        config.write_text(yaml.safe_dump({"backend": "hailo"}))
        drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.getuid() == 0 else []
        result = subprocess.run(
            [*drop, str(HAILO_VISION), "doctor", "--config", str(config), "--device", str(node)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(shared)
    (line,) = lines(result, "FAIL", "access")
    assert "may not open" in line and f"{node}" in line
    if os.getuid() == 0:
        assert f":{group.gr_name})" in line
        assert f"sudo usermod -aG {group.gr_name} nobody" in result.stdout
        assert f"sudo usermod -aG {group.gr_name} hailo-vision" in result.stdout


def test_the_doctor_runs_from_the_repository_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "doctor", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert "--device" in result.stdout and "--config" in result.stdout


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("5.2.0", "OK   hailort: HailoRT 5.2.0 ("),
        ("5.0.1", "OK   hailort: HailoRT 5.0.1 ("),
        ("5.0.0", "FAIL hailort: HailoRT 5.0.0 has no GenAI API"),
    ],
)
def test_hailort_release_and_features_are_reported(tmp_path: Path, version: str, expected: str) -> None:
    """With the HailoRT double importable, as a machine with HailoRT installed but no device."""
    result = doctor(tmp_path, {"backend": "hailo"}, PYTHONPATH=str(DOUBLE_DIR), HAILO_DOUBLE_VERSION=version)
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(expected)]
    if version == "5.2.0":
        assert line.endswith("features: optimize_memory_on_device, videos, max_context_capacity, "
                             "get_context_usage_size, save_context")  # fmt: skip
    if version == "5.0.1":
        assert line.endswith("features: ")
    if version == "5.0.0":  # GenAI came with 5.0.1
        assert "fix: upgrade HailoRT to 5.0.1 or later" in result.stdout


def test_double_hefs_are_parsed_by_hailorts_parser(tmp_path: Path) -> None:
    """Where hailo_platform.HEF exists, it judges the file (the double's HEFs are not binary)."""
    vlm = make_vlm_hef(tmp_path, DEMO_VLM_DIR)
    broken, page = tmp_path / "broken.hef", tmp_path / "page.hef"
    broken.write_bytes(b"\x01HEF but truncated")
    page.write_bytes(b"<html>404</html>")
    config = {"backend": "hailo", "hailo": {"vlm_hef": str(vlm), "clip_hef": str(broken)}}
    result = doctor(tmp_path, config, PYTHONPATH=str(DOUBLE_DIR))
    (ok,) = lines(result, "OK", "vlm hef")
    assert "network groups: vlm; not loaded on the device" in ok
    (doubtful,) = lines(result, "WARN", "clip hef")  # a HEF header the parser rejects
    assert f"{broken}: HailoRT cannot parse it" in doubtful
    config["hailo"]["clip_hef"] = str(page)
    (bad,) = lines(doctor(tmp_path, config, PYTHONPATH=str(DOUBLE_DIR)), "FAIL", "clip hef")
    assert f"{page}: HailoRT cannot parse it" in bad


def test_the_firmware_is_queried_only_while_nobody_else_holds_the_device(tmp_path: Path) -> None:
    node = tmp_path / "hailo0"
    node.write_bytes(b"")
    double = {"PYTHONPATH": str(DOUBLE_DIR), "HAILO_DOUBLE_STATE_DIR": str(tmp_path / "device")}
    free = doctor(tmp_path, {"backend": "hailo"}, "--device", str(node), **double)
    (line,) = lines(free, "OK", "firmware")
    assert "HAILO10H firmware 5.2.0" in line
    assert line.endswith("(Hailo-10H)")  # the board name without the NUL bytes that pad it
    holder = hold_open(node, "python-holder", tmp_path)
    try:
        held = doctor(tmp_path, {"backend": "hailo"}, "--device", str(node), **double)
    finally:
        holder.kill()
        holder.wait()
    (line,) = lines(held, "OK", "firmware")
    assert "not queried while another process holds the device (non-invasive)" in line
    (line,) = lines(held, "WARN", "in use")
    assert f"pid {holder.pid}" in line and f"kill {holder.pid}" in held.stdout
