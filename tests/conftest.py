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


# What must never reach a log: image bytes (data URLs, PNG and JPEG in base64), API keys and the
# prompts the tests send.
NEVER_LOGGED = (
    "data:image/",
    "iVBORw0KGgo",
    "/9j/4AAQ",
    "Bearer ",
    "inline-key",
    "file-key",
    "access-key",
    "What color is the shape",
    "Describe the shapes",
    "What shape is this",
)


@pytest.fixture(scope="session", autouse=True)
def no_secrets_in_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole run: every service log the tests wrote is free of image bytes, keys and prompts."""
    yield
    found = []
    for log in tmp_path_factory.getbasetemp().rglob("*.log"):
        text = log.read_text(errors="replace")
        found += [f"{log}: {secret!r}" for secret in NEVER_LOGGED if secret in text]
    assert not found, "logged what must never be: " + "; ".join(found[:10])
