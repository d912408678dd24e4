"""pytest fixtures for tests that run code against the HailoRT double (import them into a test module)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, activate, import_version, subprocess_env

activate()

from hailo_double_tools import settings  # noqa: E402
from hailo_double_tools.hef_files import make_clip_hef, make_vlm_hef  # noqa: E402
from hailo_double_tools.journal import read_journal  # noqa: E402

from npu_worker.config import DEVICE_DIR_ENV  # noqa: E402

TEST_WAIT_S = "0.3"


@dataclass
class HailoEnv:
    """One simulated Hailo-10H for one test: its state directory, journal file and settings."""

    state_dir: Path
    journal: Path
    settings: dict[str, str]

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process that should see this same device and journal."""
        return subprocess_env(**{**self.settings, **extra})

    def journal_entries(self, event: str | None = None) -> list[dict[str, Any]]:
        """Journal entries written by every process using this device (optionally one event kind)."""
        entries = read_journal(self.journal)
        return [e for e in entries if event is None or e["event"] == event]


@pytest.fixture
def hailo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HailoEnv]:
    """A fresh simulated device (own lock directory and journal), HailoRT 5.2.0, short busy wait."""
    values = {
        settings.STATE_DIR_VAR: str(tmp_path / "hailo-state"),
        settings.JOURNAL_VAR: str(tmp_path / "hailo-journal.jsonl"),
        settings.WAIT_VAR: TEST_WAIT_S,
        settings.VERSION_VAR: settings.DEFAULT_VERSION,
    }
    values[DEVICE_DIR_ENV] = str(tmp_path / "hailo-state" / "dev")  # the holder scan sees the double
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield HailoEnv(Path(values[settings.STATE_DIR_VAR]), Path(values[settings.JOURNAL_VAR]), values)


@pytest.fixture(scope="session")
def demo_vlm_hef(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VLM double HEF for the demo Qwen2-VL (112x112x3 uint8 frames)."""
    return make_vlm_hef(tmp_path_factory.mktemp("hef"), DEMO_VLM_DIR)


@pytest.fixture(scope="session")
def demo_clip_hef(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quantised CLIP image-encoder double HEF for the demo CLIP (96x96x3 uint8 in, 64 uint8 out)."""
    return make_clip_hef(tmp_path_factory.mktemp("hef"), DEMO_CLIP_DIR, quantized=True)


@pytest.fixture
def version_restored() -> Iterator[None]:
    """For a test that re-imports hailo_platform as another release: the default one comes back."""
    yield
    import_version(settings.DEFAULT_VERSION)
