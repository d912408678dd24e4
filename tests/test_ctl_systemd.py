"""What `hailo-visionctl` asks systemd when the service is down: only where systemd runs."""

from pathlib import Path

import pytest

from supervisor.ctl_systemd import systemd_facts

FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
    is-active) echo failed; exit 3 ;;
    show) echo "$@" > "${0%/*}/asked"; printf '%s\\n' ActiveState=failed SubState=failed \\
        Result=exit-code ExecMainStatus=1 NRestarts=5 'StatusText=NPU worker restarting (exit 1)' Other=x ;;
esac
"""


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_where_systemd_runs_it_says_why_the_unit_is_down(systemctl: Path, tmp_path: Path) -> None:
    facts = systemd_facts(booted=tmp_path)
    assert facts == {
        "is-active": "failed",
        "ActiveState": "failed",
        "SubState": "failed",
        "Result": "exit-code",
        "ExecMainStatus": "1",
        "NRestarts": "5",
        "StatusText": "NPU worker restarting (exit 1)",
    }
    assert (systemctl / "asked").read_text().split()[:2] == ["show", "hailo-vision.service"]


def test_without_systemd_running_it_asks_nothing(systemctl: Path, tmp_path: Path) -> None:
    assert systemd_facts(booted=tmp_path / "absent") is None
    assert not (systemctl / "asked").exists()
