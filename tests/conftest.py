"""Shared test setup: models/ (the shapes world) and tests/ (harnesses) are importable by every test."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))
sys.path.insert(0, str(ROOT / "tests"))

from ollama_testkit import Pair  # noqa: E402
from service import Service  # noqa: E402


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The real service on the demo models, shared by the tests that do not disturb it."""
    running = Service(tmp_path_factory.mktemp("service")).wait_ready()
    yield running
    running.stop()


@pytest.fixture
def make_pair(tmp_path: Path) -> Iterator[Any]:
    pairs: list[Pair] = []

    def make(scheduler: dict[str, Any], ollama_env: dict[str, str] | None = None, **options: Any) -> Pair:
        pair = Pair(tmp_path, scheduler, ollama_env, **options)
        pairs.append(pair)
        return pair

    yield make
    for pair in pairs:
        pair.stop()
