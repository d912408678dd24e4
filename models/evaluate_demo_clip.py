"""Measure the exported demo CLIP through the product's ONNX runner (no torch) on fresh images.

Zero-shot top-1 over the 18 prompts "a photo of a {colour} {shape}" on held-out one-shape scenes
(seed disjoint from training), with the plain prompt and with the five-template ensemble (each
label's text embeddings averaged over the templates, renormalised); accuracy by aspect ratio; and
on multi-shape scenes whether the labels present are exactly the top-k prompts, each prompt scored
on its own. Images go through the whole runner path: full-size, JPEG/PNG round-tripped at random.

Run with the product venv:  .venv/bin/python models/evaluate_demo_clip.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import numpy as np  # noqa: E402
import shapes_world as sw  # noqa: E402
from demo_clip_data import LABELS, TEMPLATES, ZERO_SHOT_PROMPT, label_text  # noqa: E402

from npu_worker.cpu.clip_runner import ClipRunner, l2_normalise  # noqa: E402

EVAL_SEED = 3000  # training uses 1000-1001, its validation 2000
ASPECT_BUCKETS = ((1.0, 1.5), (1.5, 2.5), (2.5, 6.0))


def label_embeddings(runner: ClipRunner, templates: tuple[str, ...]) -> np.ndarray:
    """[18, D]: each label's normalised text embedding, averaged over templates and renormalised."""
    per_template = [runner.embed_texts([t.format(label_text(c, s)) for c, s in LABELS]) for t in templates]
    return l2_normalise(np.mean(per_template, axis=0))


def fresh_images(count: int, rng: np.random.Generator, n_shapes: int | None) -> tuple[list, list[sw.Scene]]:
    scenes = [sw.random_scene(rng, n_shapes=n_shapes or int(rng.integers(2, 4))) for _ in range(count)]
    images = [np.asarray(sw.roundtrip(sw.render(s), rng)) for s in scenes]
    return images, scenes


def embed_in_batches(runner: ClipRunner, images: list, batch: int = 32) -> np.ndarray:
    return np.concatenate([runner.embed_images(images[i : i + batch]) for i in range(0, len(images), batch)])


def one_shape_accuracy(runner: ClipRunner, count: int, rng: np.random.Generator) -> dict[str, object]:
    images, scenes = fresh_images(count, rng, n_shapes=1)
    embeds = embed_in_batches(runner, images)
    truth = np.array([LABELS.index((s.shapes[0].colour, s.shapes[0].kind)) for s in scenes])
    aspect = np.array([max(s.width, s.height) / min(s.width, s.height) for s in scenes])
    result: dict[str, object] = {"images": count}
    for name, templates in (("plain", (ZERO_SHOT_PROMPT,)), ("ensemble", TEMPLATES)):
        predicted = (embeds @ label_embeddings(runner, templates).T).argmax(1)
        correct = predicted == truth
        result[f"top1_{name}"] = round(float(correct.mean()), 4)
        result[f"colour_{name}"] = round(
            float(np.mean([LABELS[p][0] == LABELS[t][0] for p, t in zip(predicted, truth, strict=True)])), 4
        )
        result[f"shape_{name}"] = round(
            float(np.mean([LABELS[p][1] == LABELS[t][1] for p, t in zip(predicted, truth, strict=True)])), 4
        )
        result[f"top1_{name}_by_aspect"] = {
            f"{low}-{high}": {"images": int(inside.sum()), "top1": round(float(correct[inside].mean()), 4)}
            for low, high in ASPECT_BUCKETS
            if (inside := (aspect >= low) & (aspect < high)).any()
        }
    return result


def multi_shape_labels(runner: ClipRunner, count: int, rng: np.random.Generator) -> dict[str, object]:
    """Each prompt scored on its own: are the k labels present exactly the k best-scoring prompts?"""
    images, scenes = fresh_images(count, rng, n_shapes=None)
    scores = embed_in_batches(runner, images) @ label_embeddings(runner, TEMPLATES).T
    exact, recalled = [], []
    for row, scene in zip(scores, scenes, strict=True):
        present = {LABELS.index((s.colour, s.kind)) for s in scene.shapes}
        top = set(np.argsort(-row)[: len(present)].tolist())
        exact.append(top == present)
        recalled.append(len(top & present) / len(present))
    return {
        "images": count,
        "present_labels_are_top_k": round(float(np.mean(exact)), 4),
        "present_label_recall_at_k": round(float(np.mean(recalled)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models/demo/clip-demo")
    parser.add_argument("--images", type=int, default=400, help="one-shape images (>= 300)")
    parser.add_argument("--multi-images", type=int, default=200, help="two- and three-shape images")
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--out", type=Path, help="default: <model-dir>/evaluation.json")
    args = parser.parse_args(argv)
    started = time.time()
    runner = ClipRunner(args.model_dir)
    rng = np.random.default_rng(args.seed)
    report = {
        "model": str(
            args.model_dir.relative_to(ROOT) if args.model_dir.is_relative_to(ROOT) else args.model_dir
        ),
        "seed": args.seed,
        "runner": "npu_worker.cpu.clip_runner.ClipRunner (onnxruntime)",
        "logit_scale": round(runner.logit_scale, 4),
        "one_shape": one_shape_accuracy(runner, args.images, rng),
        "multi_shape": multi_shape_labels(runner, args.multi_images, rng),
    }
    report["seconds"] = round(time.time() - started, 1)
    out = args.out or args.model_dir / "evaluation.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
