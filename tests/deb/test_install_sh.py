"""install.sh, the install without the Debian package (`make deb-check`, as root): the package's
layout, user and unit; run again it changes nothing it should keep and says so; uninstall keeps the
configuration, --purge leaves nothing but the group hailo. The tests run in file order.
"""

import grp
import pwd
import stat
import subprocess
from pathlib import Path

import pytest
from machine import ETC, GROUP, ROOT_ONLY, STATE, USER, VENV, known, paths, sh, site_packages
from service import free_port

pytestmark = ROOT_ONLY
INSTALL_SH = Path(__file__).resolve().parents[2] / "install.sh"
UNIT = Path("/etc/systemd/system/hailo-vision.service")


@pytest.fixture(scope="module")
def before() -> set[str]:
    """The watched paths before install.sh runs (the package, and an earlier run, are cleared first)."""
    sh("apt-get", "purge", "-y", "-q", "hailo-vision", check=False)
    sh(str(INSTALL_SH), "uninstall", "--purge")
    return paths()


def test_install_lays_out_the_packages_files_user_and_unit(before: set[str]) -> None:
    said = sh(str(INSTALL_SH))
    assert f"user {USER}: created" in said and f"config: {ETC}/config.yaml installed" in said
    assert Path("/usr/bin/hailo-vision").resolve() == VENV / "bin/hailo-vision"
    assert Path("/usr/bin/hailo-visionctl").resolve() == VENV / "bin/hailo-visionctl"
    assert Path("/usr/share/man/man1/hailo-visionctl.1.gz").is_file()
    assert UNIT.read_text() == (INSTALL_SH.parent / "packaging/debian/hailo-vision.service").read_text()
    assert "path: /usr/share/hailo-vision/models/qwen2-vl-demo" in (ETC / "config.yaml").read_text()
    assert USER in grp.getgrnam(GROUP).gr_mem
    state = STATE.stat()
    assert state.st_uid == pwd.getpwnam(USER).pw_uid and stat.S_IMODE(state.st_mode) == 0o750
    assert list((site_packages() / "supervisor/__pycache__").glob("*.pyc"))
    down = sh("/usr/bin/hailo-visionctl", "status", "--url", f"http://127.0.0.1:{free_port()}", check=False)
    assert down.startswith("hailo-vision down")


def test_running_it_again_keeps_the_users_edits_and_says_so() -> None:
    edited = (ETC / "config.yaml").read_text() + "# edited by the deb check\n"
    (ETC / "config.yaml").write_text(edited)
    said = sh(str(INSTALL_SH))
    assert f"user {USER}: exists" in said and f"group {GROUP}: exists" in said
    assert f"{ETC}/config.yaml kept as you edited it; this version's is {ETC}/config.yaml.new" in said
    assert f"config: {ETC}/environment unchanged" in said
    assert (ETC / "config.yaml").read_text() == edited
    assert (ETC / "config.yaml.new").read_text() + "# edited by the deb check\n" == edited
    assert Path("/usr/bin/hailo-vision").resolve() == VENV / "bin/hailo-vision"


def test_an_unknown_command_is_refused_with_the_usage() -> None:
    result = subprocess.run([str(INSTALL_SH), "remove"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "usage:" in result.stderr


def test_uninstall_keeps_the_configuration_state_and_user() -> None:
    said = sh(str(INSTALL_SH), "uninstall")
    assert f"kept: {ETC}, {STATE} and the user {USER}" in said
    assert not VENV.exists() and not UNIT.exists() and not Path("/usr/bin/hailo-vision").exists()
    assert (ETC / "config.yaml").is_file() and STATE.is_dir() and known("user", USER)


def test_uninstall_purge_leaves_nothing_but_the_group(before: set[str]) -> None:
    sh(str(INSTALL_SH), "uninstall", "--purge")
    assert not known("user", USER) and not known("group", USER) and known("group", GROUP)
    assert sorted(paths() - before) == []
