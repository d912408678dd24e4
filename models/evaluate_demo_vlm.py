"""Evaluate the committed demo VLM through the product's own ONNX Runtime runner (no torch needed).

Draws fresh shapes-world scenes - one shape for the colour and shape questions, one to three for
count - saves each through JPEG or PNG as training does, asks the canonical question of
shapes_world.QUESTIONS greedily with max_tokens 16, and reports per question kind: accuracy, mean
answer length, and how many answers ended by end-of-sequence (reason "stop") versus the token limit.
The same for the clip questions (shapes_world.CLIP_QUESTIONS, four-frame clips) and for answers in
JSON (the question plus JSON_SUFFIX; right when the reply parses to exactly the expected object).
The default seed, 20261125, is disjoint from the training script's seeds (train 1234, its own
held-out evaluation 987654321), so every image is new to the model. Writes evaluation.json into the
model directory and prints a summary.

    .venv/bin/python models/evaluate_demo_vlm.py [--model-dir DIR] [--n 300] [--seed 20261125] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import shapes_world as sw  # noqa: E402
from demo_vlm_data import JSON_QUESTIONS, JSON_SUFFIX  # noqa: E402

from npu_worker.backend import Finish, ImagePart, Message, SamplingParams, TextPart, Token, VideoPart  # noqa: E402
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner  # noqa: E402

DEFAULT_MODEL_DIR = ROOT / "models" / "demo" / "qwen2-vl-demo"
DEFAULT_SEED = 20261125
KINDS = ("colour", "shape", "count", "motion", "turn", "json_both", "json_count")
MAX_TOKENS = 16
GREEDY = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)


def ask(runner: Qwen2VLRunner, visual: ImagePart | VideoPart, question: str) -> tuple[str, Finish]:
    """The runner's greedy reply and its Finish event."""
    messages = [Message("user", (visual, TextPart(question)))]
    text, finish = [], None
    for event in runner.generate(messages, GREEDY):
        if isinstance(event, Token):
            text.append(event.text)
        else:
            finish = event
    assert finish is not None
    return "".join(text), finish


def draw(kind: str, rng: np.random.Generator) -> tuple[ImagePart | VideoPart, str, str, list[int]]:
    """A fresh picture or clip for a question kind: the visual, the question, the answer, the size."""
    if kind in sw.CLIP_QUESTIONS:
        scenes, expected = sw.random_clip(rng, kind)
        frames = tuple(np.asarray(sw.roundtrip(sw.render(s), rng)) for s in scenes)
        return VideoPart(frames), sw.CLIP_QUESTIONS[kind], expected, [sw.CLIP_SIDE, sw.CLIP_SIDE]
    base = kind.removeprefix("json_")
    scene = sw.random_scene(rng, n_shapes=None if base == "count" else 1)
    image = ImagePart(np.asarray(sw.roundtrip(sw.render(scene), rng)))
    if kind.startswith("json_"):
        questions, fields = JSON_QUESTIONS[base]
        return image, questions[0] + JSON_SUFFIX, sw.json_answer(scene, fields), [scene.width, scene.height]
    return image, sw.QUESTIONS[kind], sw.answer(scene, kind), [scene.width, scene.height]


def question_of(kind: str) -> str:
    if kind.startswith("json_"):
        return JSON_QUESTIONS[kind.removeprefix("json_")][0][0] + JSON_SUFFIX
    return {**sw.QUESTIONS, **sw.CLIP_QUESTIONS}[kind]


def evaluate_kind(runner: Qwen2VLRunner, kind: str, n: int, rng: np.random.Generator) -> dict[str, Any]:
    right, stopped = 0, 0
    lengths: list[int] = []
    chars: list[int] = []
    wrong: list[dict[str, Any]] = []
    for _ in range(n):
        visual, question, expected, size = draw(kind, rng)
        reply, finish = ask(runner, visual, question)
        if sw.json_correct(reply, expected) if kind.startswith("json") else sw.is_correct(reply, expected):
            right += 1
        elif len(wrong) < 5:
            wrong.append({"expected": expected, "reply": reply, "size": size})
        lengths.append(finish.completion_tokens)
        chars.append(len(reply))
        stopped += finish.reason == "stop"
    return {
        "n": n,
        "accuracy": right / n,
        "mean_answer_tokens": statistics.fmean(lengths),
        "mean_answer_chars": statistics.fmean(chars),
        "finished_by_eos": stopped / n,
        "finished_by_length": 1 - stopped / n,
        "wrong_examples": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Held-out accuracy of the demo VLM via the ONNX runner")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--n", type=int, default=300, help="images per question kind")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="scene seed (disjoint from training)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()

    runner = Qwen2VLRunner(args.model_dir, threads=args.threads)
    started = time.perf_counter()
    results = {}
    for kind in KINDS:
        # One generator per kind, derived from the seed, so --n does not shift the other kinds' scenes.
        rng = np.random.default_rng([args.seed, KINDS.index(kind)])
        results[kind] = evaluate_kind(runner, kind, args.n, rng)
    report = {
        "model_dir": str(args.model_dir),
        "runner": "npu_worker.cpu.qwen2vl_runner.Qwen2VLRunner (ONNX Runtime)",
        "seed": args.seed,
        "n_per_kind": args.n,
        "decoding": {"temperature": 0, "max_tokens": MAX_TOKENS},
        "questions": {kind: question_of(kind) for kind in KINDS},
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = args.model_dir / "evaluation.json"
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"{args.model_dir.name}: {args.n} fresh images per kind, seed {args.seed}, "
        f"greedy, max {MAX_TOKENS} tokens"
    )
    print(f"{'kind':<11}{'accuracy':>10}{'tokens':>8}{'eos':>7}{'length':>8}")
    for kind, r in results.items():
        print(
            f"{kind:<11}{r['accuracy']:>10.1%}{r['mean_answer_tokens']:>8.2f}"
            f"{r['finished_by_eos']:>7.0%}{r['finished_by_length']:>8.0%}"
        )
    print(f"wrote {out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
