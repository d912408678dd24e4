"""bench/hailo.py: skips cleanly without a device, and measures through the backend on the double."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, DOUBLE_DIR
from hailo_double_tools import make_clip_hef, make_vlm_hef, read_journal
from service import ROOT

from npu_worker.hailo.holders import device_nodes

BENCH = ROOT / "bench" / "hailo.py"
FIGURES = ("load_s", "ttft_s", "tokens_per_s", "clip_fps_b1", "clip_fps_b8")


def run_bench(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HAILO_VISION_", "HAILO_DOUBLE_"))}
    environ.pop("PYTHONPATH", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=environ, timeout=120
    )


@pytest.mark.skipif(bool(device_nodes()), reason="this machine has a Hailo device node")
def test_without_hailort_or_a_device_it_skips_and_says_why() -> None:
    result = run_bench()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "hailo_bench=skipped_no_device"
    assert "needs a Hailo-10H" in result.stdout


def test_on_the_double_it_reports_every_figure_beside_the_published_ones(tmp_path: Path) -> None:
    config = {
        "hailo": {
            "vlm_hef": str(make_vlm_hef(tmp_path, DEMO_VLM_DIR)),
            "clip_hef": str(make_clip_hef(tmp_path, DEMO_CLIP_DIR, quantized=True)),
        },
        "model": {"path": str(DEMO_VLM_DIR)},
        "clip": {"path": str(DEMO_CLIP_DIR)},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    journal = tmp_path / "journal.jsonl"
    result = run_bench(
        "--config", str(path), "--repeats", "1", "--tokens", "4", "--clip-images", "8",
        HAILO_VISION_BENCH_HAILORT=str(DOUBLE_DIR),
        HAILO_DOUBLE_STATE_DIR=str(tmp_path / "device"),
        HAILO_DOUBLE_JOURNAL=str(journal),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("hailo_bench=ok ")
    figures = dict(field.split("=") for field in last.split()[1:])
    assert list(figures) == list(FIGURES)
    assert all(math.isfinite(float(v)) and float(v) > 0 for v in figures.values()), figures
    for published in ("9.70", "0.92", "8.40", "63.00", "157.00"):
        assert published in result.stdout
    batches = {e["batch"] for e in read_journal(journal) if e["event"] == "infer"}
    assert batches == {1, 8}  # CLIP measured at batch 1 and at batch 8
    generations = [e for e in read_journal(journal) if e["event"] == "generate"]
    assert {g["args"]["do_sample"] for g in generations} == {False}  # greedy answers
