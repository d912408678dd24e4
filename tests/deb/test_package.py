"""The Debian package end to end (`make deb-check`, as root): lintian, the unit, an install with apt,
a real start of the installed command as the hailo-vision user under systemd's notify protocol,
hailo-visionctl against it, an upgrade over itself keeping an edited conffile, remove and purge.

It runs only when $DEB_PACKAGE names the built .deb. The tests run in file order (as pytest runs a
module), each on the machine the previous one left; lintian runs beside them from the start.
"""

import grp
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from machine import ETC, GROUP, ROOT_ONLY, STATE, USER, VENV, known, paths, sh, site_packages
from service import free_port

DEB = Path(os.environ.get("DEB_PACKAGE", "/nonexistent.deb"))
pytestmark = ROOT_ONLY


@pytest.fixture(scope="module")
def lintian() -> Iterator[subprocess.Popen[str]]:
    """lintian on the .deb, started at once (it takes a minute) and read by the last test."""
    process = subprocess.Popen(
        ["lintian", "--fail-on", "error,warning", str(DEB)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def before() -> set[str]:
    """The watched paths before the package is installed (a leftover of an earlier run is purged)."""
    sh("apt-get", "purge", "-y", "-q", "hailo-vision", check=False)
    return paths()


def test_installs_with_apt(lintian: subprocess.Popen[str], before: set[str]) -> None:
    sh("apt-get", "install", "-y", "-q", str(DEB.resolve()))
    assert sh("dpkg-query", "-W", "-f", "${Status}", "hailo-vision") == "install ok installed"
    assert Path("/usr/bin/hailo-vision").resolve() == VENV / "bin/hailo-vision"
    assert Path("/usr/bin/hailo-visionctl").resolve() == VENV / "bin/hailo-visionctl"
    conffiles = sh("dpkg-query", "-W", "-f", "${Conffiles}", "hailo-vision")
    assert f"{ETC}/config.yaml" in conffiles and f"{ETC}/environment" in conffiles
    manpages = sh("dpkg", "-L", "hailo-vision")
    assert "/usr/share/man/man1/hailo-vision.1.gz" in manpages
    assert "/usr/share/man/man1/hailo-visionctl.1.gz" in manpages


def test_install_sh_refuses_to_run_beside_the_package() -> None:
    install_sh = Path(__file__).resolve().parents[2] / "install.sh"
    refused = subprocess.run([str(install_sh)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "the Debian package hailo-vision is installed" in refused.stderr


def test_no_bytecode_is_shipped_but_postinst_compiles_it() -> None:
    shipped = sh("dpkg-deb", "--contents", str(DEB))
    assert ".pyc" not in shipped and "__pycache__" not in shipped
    assert list((site_packages() / "supervisor/__pycache__").glob("*.pyc"))


def test_the_environment_sees_system_packages_and_keeps_its_own_numpy_first() -> None:
    probe = (
        "import sys, numpy; print(numpy.__version__); print(sys.version_info[1]); print(*sys.path, sep='\\n')"
    )
    numpy_version, minor, *path = sh(str(VENV / "bin/python3"), "-c", probe).splitlines()
    assert "/usr/lib/python3/dist-packages" in path  # where Hailo's hailo_platform is installed
    assert path.index(str(site_packages())) < path.index("/usr/lib/python3/dist-packages")
    if int(minor) < 13:
        assert int(numpy_version.split(".")[0]) < 2, "hailort needs numpy<2 before Python 3.13"


def test_the_user_its_group_and_the_config_paths() -> None:
    assert known("user", USER) and known("group", GROUP)
    assert USER in grp.getgrnam(GROUP).gr_mem
    assert pwd.getpwnam(USER).pw_dir == str(STATE) and STATE.is_dir()
    config = (ETC / "config.yaml").read_text()
    assert "path: /usr/share/hailo-vision/models/qwen2-vl-demo" in config
    assert "path: /usr/share/hailo-vision/models/clip-demo" in config
    assert (Path("/usr/share/hailo-vision/models/qwen2-vl-demo") / "onnx/decoder_model_merged.onnx").is_file()


def unit_file() -> str:
    listed = sh("dpkg", "-L", "hailo-vision").splitlines()
    return next(p for p in listed if p.endswith("/hailo-vision.service"))


def test_the_unit_verifies_and_its_exposure_is_at_most_2() -> None:
    sh("systemd-analyze", "verify", unit_file())
    report = sh("systemd-analyze", "security", "--offline=true", "--threshold=20", unit_file())
    exposure = float(re.findall(r"Overall exposure level for \S+: (\d+\.\d+)", report)[0])
    print(f"systemd-analyze security --offline=true: exposure {exposure}")
    assert exposure <= 2.0


def notify_socket(folder: Path) -> socket.socket:
    """A datagram socket where the service sends its sd_notify messages, as systemd's would be."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(folder / "notify"))
    os.chmod(folder / "notify", 0o777)
    return listener


def wait_for(
    listener: socket.socket, message: str, process: subprocess.Popen[bytes], timeout_s: float
) -> list[str]:
    """Every message received until one line equals `message` (fails if the service exits first)."""
    received: list[str] = []
    deadline = time.monotonic() + timeout_s
    while message not in received:
        assert process.poll() is None, f"exited {process.returncode} before {message}: {received}"
        assert time.monotonic() < deadline, f"no {message} within {timeout_s} s: {received}"
        listener.settimeout(0.5)
        try:
            received.extend(listener.recv(4096).decode().splitlines())
        except TimeoutError:
            continue
    return received


def unit_environment() -> dict[str, str]:
    """The unit's Environment= and EnvironmentFile= (the shipped file) as systemd would pass them."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HAILORT_LOGGER_PATH": "NONE", "PYTHONUNBUFFERED": "1"}
    for line in (ETC / "environment").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def ctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = ["/usr/bin/hailo-visionctl", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)


def test_the_installed_service_starts_as_its_user_and_tells_systemd_it_is_ready() -> None:
    folder = Path(tempfile.mkdtemp(prefix="hailo-vision-deb-"))
    folder.chmod(0o755)
    runtime = folder / "run"  # systemd's RuntimeDirectory= (mode 0700, the service's user)
    runtime.mkdir(mode=0o700)
    os.chown(runtime, pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid)
    port = free_port()
    env = {
        **unit_environment(),
        "NOTIFY_SOCKET": str(folder / "notify"),
        "STATE_DIRECTORY": str(STATE),
        "HAILO_VISION_API_PORT": str(port),
        "HAILO_VISION_SUPERVISOR_RUNTIME_DIR": str(runtime),
    }
    listener = notify_socket(folder)
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--init-groups"]
    command = [*as_user, "/usr/bin/hailo-vision", "serve"]
    log = (folder / "service.log").open("w")
    process = subprocess.Popen(command, env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT)
    try:
        messages = wait_for(listener, "READY=1", process, timeout_s=120)
        assert any(m.startswith("STATUS=") for m in messages), messages
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=10) as answer:
            assert answer.status == 200 and json.load(answer)["ready"] is True
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{pwd.getpwnam(USER).pw_uid}\s", status, re.M)
        assert re.search(rf"^Gid:\s+{grp.getgrnam(GROUP).gr_gid}\s", status, re.M)

        ctl_env = {"PATH": env["PATH"], "HAILO_VISION_API_PORT": str(port)}  # the config file gives the rest
        shown = ctl("status", env=ctl_env)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert shown.stdout.startswith("hailo-vision ready, up ")
        assert f"127.0.0.1:{port}, backend onnx, 0 worker restarts" in shown.stdout
        assert "qwen2-vl-demo (vlm) cpu" in shown.stdout and "clip-demo (clip) cpu" in shown.stdout
        document = json.loads(ctl("status", "--json", env=ctl_env).stdout)
        assert document["schema"] == 1 and document["service"]["state"] == "ready"
        assert document["service"]["pid"] == process.pid  # the supervisor's: systemd's MainPID
        assert document["service"]["listen"] == f"127.0.0.1:{port}"
        assert {m["id"] for m in document["models"]} >= {"qwen2-vl-demo", "clip-demo"}
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
        listener.close()
        log.close()
    assert returncode == 0, (folder / "service.log").read_text()
    down = ctl("status", env={"PATH": env["PATH"], "HAILO_VISION_API_PORT": str(port)})
    assert down.returncode == 2 and down.stdout.startswith("hailo-vision down")


def test_an_upgrade_over_itself_keeps_an_edited_conffile() -> None:
    edited = (ETC / "config.yaml").read_text() + "# edited by the deb check\n"
    (ETC / "config.yaml").write_text(edited)
    sh("apt-get", "install", "--reinstall", "-y", "-q", str(DEB.resolve()))
    assert (ETC / "config.yaml").read_text() == edited
    assert sorted(p.name for p in ETC.iterdir()) == ["config.yaml", "environment"]
    assert list((site_packages() / "supervisor/__pycache__").glob("*.pyc"))


def test_remove_keeps_the_configuration_and_the_user() -> None:
    sh("apt-get", "remove", "-y", "-q", "hailo-vision")
    assert not VENV.exists(), "prerm removes the bytecode postinst compiled"
    assert (ETC / "config.yaml").is_file() and known("user", USER)


def test_purge_leaves_nothing_but_the_shared_group(before: set[str]) -> None:
    sh("apt-get", "purge", "-y", "-q", "hailo-vision")
    assert not ETC.exists() and not STATE.exists()
    assert not known("user", USER) and not known("group", USER)
    assert known("group", GROUP), "the group hailo stays: Hailo's packages and udev rules may use it"
    assert sorted(paths() - before) == []


def test_lintian_reports_no_error_and_no_warning(lintian: subprocess.Popen[str]) -> None:
    output, _ = lintian.communicate(timeout=600)
    assert lintian.returncode == 0 and not re.search(r"^[EW]: ", output, re.M), output
