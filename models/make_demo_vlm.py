"""Train the tiny demo Qwen2-VL on the shapes world and export it like onnx-community/Qwen2-VL-2B-Instruct.

Runs on the CPU with torch + transformers (the demo venv only). Steps: train a byte-level BPE tokenizer,
build a ~2.3M-parameter `Qwen2VLForConditionalGeneration`, train it with an easy-first curriculum on
images, clips and JSON answers, check held-out accuracy, export the three ONNX files, verify them
against torch, then write the model folder, the golden test fixtures and a training report.

    .venv-demo/bin/python models/make_demo_vlm.py            # full run (~45 min on 2 cores)
    .venv-demo/bin/python models/make_demo_vlm.py --quick    # barely trained, for pipeline checks
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from demo_vlm_data import canonical_example, make_example, sample_kind, tokenizer_corpus
from demo_vlm_export import export_onnx
from demo_vlm_golden import write_golden
from demo_vlm_inputs import InputBuilder
from demo_vlm_tokenizer import save_tokenizer_files, token_id, train_tokenizer
from demo_vlm_verify import verify_export
from shapes_world import is_correct, json_correct
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "models" / "demo" / "qwen2-vl-demo"
DEFAULT_GOLDEN = REPO / "tests" / "golden" / "qwen2vl"

MODEL_SEED = 0
TRAIN_DATA_SEED = 1234
EVAL_SEED = 987_654_321  # a different stream from training: the evaluation scenes are unseen
VERIFY_SEED = 55
VOCAB_SIZE = 640
EVAL_KINDS = ("colour", "shape", "count", "yesno", "describe", "motion", "turn", "json_both", "json_count")
EXACT_KINDS = ("yesno", "describe")  # their answers are whole sentences, compared as they are


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_model(tokenizer: Any) -> Qwen2VLForConditionalGeneration:
    """The tiny Qwen2-VL: text 128-wide x 4 layers, vision 128-wide x 4 blocks."""
    ids = {name: token_id(tokenizer, name) for name in ("<|endoftext|>", "<|im_end|>")}
    text = {
        "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
    }
    vision = {
        "depth": 4,
        "embed_dim": 128,
        "hidden_size": 128,
        "num_heads": 4,
        "mlp_ratio": 4,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "in_channels": 3,
    }
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=token_id(tokenizer, "<|image_pad|>"),
        video_token_id=token_id(tokenizer, "<|video_pad|>"),
        vision_start_token_id=token_id(tokenizer, "<|vision_start|>"),
        vision_end_token_id=token_id(tokenizer, "<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(MODEL_SEED)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    return model


def learning_rate(step: int, progress: float, peak: float, warmup: int = 100) -> float:
    """Linear warm-up over steps, then cosine decay to 10 % over the run's progress (0..1)."""
    return peak * min(1.0, (step + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0))))


def evaluate(
    model: Qwen2VLForConditionalGeneration, builder: InputBuilder, n_per_kind: int, seed: int
) -> dict[str, dict[str, float]]:
    """Greedy held-out accuracy per kind (canonical wording for the three target kinds)."""
    rng = np.random.default_rng(seed)
    eos = set(model.generation_config.eos_token_id)
    model.eval()
    results = {}
    for kind in EVAL_KINDS:
        examples = [
            make_example(rng, kind) if kind in EXACT_KINDS else canonical_example(rng, kind)
            for _ in range(n_per_kind)
        ]
        correct = stopped = 0
        for start in range(0, n_per_kind, 50):
            chunk = examples[start : start + 50]
            inputs = builder.tensors([builder.encode(ex.messages, ex.images, ex.videos) for ex in chunk])
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
            for ex, row in zip(chunk, out[:, inputs["input_ids"].shape[1] :].tolist(), strict=True):
                stopped += any(t in eos for t in row)
                reply = builder.tokenizer.decode(row, skip_special_tokens=True).strip()
                if kind in EXACT_KINDS:
                    correct += reply == ex.answer
                else:
                    correct += (
                        json_correct(reply, ex.answer)
                        if kind.startswith("json")
                        else is_correct(reply, ex.answer)
                    )
        results[kind] = {"accuracy": correct / n_per_kind, "stopped_at_eos": stopped / n_per_kind}
    model.train()
    return results


def train(
    model: Qwen2VLForConditionalGeneration, builder: InputBuilder, args: argparse.Namespace
) -> dict[str, Any]:
    """Easy-first curriculum, loss on answer tokens + <|im_end|> only.

    Progress is the larger of steps done and wall time used (of --steps and --minutes), so on a busy
    machine the learning-rate schedule still runs to completion within the time budget. The first
    --easy-steps steps use square canvases with large shapes and only the three evaluated kinds.
    """
    rng = np.random.default_rng(TRAIN_DATA_SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    model.train()
    start, cpu_start = time.monotonic(), time.process_time()
    history: list[dict[str, Any]] = []
    step = 0
    while True:
        minutes = (time.monotonic() - start) / 60
        progress = max(step / args.steps, minutes / args.minutes)
        if progress >= 1.0:
            break
        easy = step < args.easy_steps
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, progress, args.lr)
        examples = [make_example(rng, sample_kind(rng, easy), easy=easy) for _ in range(args.batch)]
        encoded = [builder.encode(ex.messages, ex.images, ex.videos) for ex in examples]
        targets = [builder.answer_ids(ex.answer) for ex in examples]
        loss = model(**builder.tensors(encoded, targets)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            lr = optimizer.param_groups[0]["lr"]
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e} progress {progress:.2f} {minutes:.1f} min")
        if args.eval_every and step and step % args.eval_every == 0:
            accuracy = evaluate(model, builder, 40, EVAL_SEED + step)
            history.append(
                {
                    "step": step,
                    "minutes": round(minutes, 2),
                    **{k: v["accuracy"] for k, v in accuracy.items()},
                }
            )
            log(f"eval at step {step}: {history[-1]}")
        step += 1
    return {
        "steps_done": step,
        "steps_planned": args.steps,
        "easy_steps": min(step, args.easy_steps),
        "train_minutes": round((time.monotonic() - start) / 60, 2),
        # what the loop cost in CPU time: on a shared machine the wall minutes also hold others' work
        "train_cpu_minutes": round((time.process_time() - cpu_start) / 60, 2),
        "eval_history": history,
    }


def preprocessor_config(builder: InputBuilder) -> dict[str, Any]:
    """Qwen2VLImageProcessor fields, in the layout of the real model's preprocessor_config.json."""
    proc = builder.processor
    size = {"shortest_edge": proc.size["shortest_edge"], "longest_edge": proc.size["longest_edge"]}
    return {
        "min_pixels": size["shortest_edge"],
        "max_pixels": size["longest_edge"],
        "size": size,
        "patch_size": proc.patch_size,
        "temporal_patch_size": proc.temporal_patch_size,
        "merge_size": proc.merge_size,
        "image_mean": list(proc.image_mean),
        "image_std": list(proc.image_std),
        "do_rescale": proc.do_rescale,
        "rescale_factor": proc.rescale_factor,
        "do_normalize": proc.do_normalize,
        "do_resize": proc.do_resize,
        "do_convert_rgb": proc.do_convert_rgb,
        "resample": int(proc.resample),
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }


def verification_cases(builder: InputBuilder) -> list[Any]:
    """Prompts for the ONNX check: square, wide, tall, two images, text only, a clip, an odd clip."""
    rng = np.random.default_rng(VERIFY_SEED)
    import shapes_world as sw

    sizes = [(224, 224), (320, 160), (150, 500)]
    images = [sw.render(sw.random_scene(rng, size=s)) for s in sizes]
    question = [{"type": "text", "text": sw.QUESTIONS["count"]}]
    cases = [
        builder.encode([{"role": "user", "content": [{"type": "image"}, *question]}], [im]) for im in images
    ]
    two = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, *question]}]
    cases.append(builder.encode(two, images[1:]))
    cases.append(builder.encode([{"role": "user", "content": question}], []))
    for frames in (4, 3):
        scenes, _ = sw.random_clip(rng, "motion", frames=frames)
        clip = [
            {
                "role": "user",
                "content": [{"type": "video"}, {"type": "text", "text": sw.CLIP_QUESTIONS["motion"]}],
            }
        ]
        cases.append(builder.encode(clip, [], [[sw.render(s) for s in scenes]]))
    return cases


def write_model_dir(
    model: Qwen2VLForConditionalGeneration,
    tokenizer: Any,
    builder: InputBuilder,
    onnx_dir: Path,
    out_dir: Path,
) -> None:
    """Replace out_dir with config, generation config, preprocessor config, tokenizer and ONNX files."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.config.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)
    (out_dir / "preprocessor_config.json").write_text(
        json.dumps(preprocessor_config(builder), indent=2) + "\n"
    )
    save_tokenizer_files(tokenizer, out_dir)
    shutil.copytree(onnx_dir, out_dir / "onnx")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="model folder to (re)write")
    parser.add_argument(
        "--golden-dir", type=Path, default=DEFAULT_GOLDEN, help="golden fixture folder to (re)write"
    )
    parser.add_argument("--quick", action="store_true", help="barely train (pipeline check, ~2 min)")
    parser.add_argument("--minutes", type=float, default=45.0, help="wall-minute budget of the training loop")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 6500, quick: 120)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (one is ~15 %% slower alone but avoids the many-fold slowdown of two 2-thread "
        "jobs on two shared cores)",
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--lr", type=float, default=7e-4, help="peak learning rate (2e-3 kept shape at chance)"
    )
    parser.add_argument(
        "--easy-steps", type=int, default=None, help="curriculum start (default: 600, quick: 30)"
    )
    parser.add_argument("--eval-every", type=int, default=None, help="monitoring eval interval (steps)")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 120 if args.quick else 6500
    if args.easy_steps is None:
        args.easy_steps = 30 if args.quick else 600
    if args.eval_every is None:
        args.eval_every = 0 if args.quick else 1000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    wall_start = time.monotonic()
    tokenizer = train_tokenizer(tokenizer_corpus(), VOCAB_SIZE)
    builder = InputBuilder(tokenizer)
    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"vocab {tokenizer.get_vocab_size()}, parameters {n_params:,}")
    model.set_attn_implementation("sdpa")
    training = train(model, builder, args)
    model.set_attn_implementation("eager")
    model.eval()
    final = evaluate(model, builder, 30 if args.quick else 300, EVAL_SEED)
    log(f"held-out accuracy (torch): {final}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        export_onnx(model, tmp_dir / "onnx")
        worst = verify_export(model, builder, tmp_dir / "onnx", verification_cases(builder), max_new=8)
        log(f"ONNX matches torch (max first-step logit diff {worst:.2e})")
        write_model_dir(model, tokenizer, builder, tmp_dir / "onnx", args.out_dir)
    hf_tokenizer = PreTrainedTokenizerFast.from_pretrained(args.out_dir)
    write_golden(model, builder, hf_tokenizer, args.golden_dir)
    report = {
        "description": "tiny Qwen2-VL trained on the shapes world (models/make_demo_vlm.py)",
        "quick_run": args.quick,
        "seeds": {
            "model": MODEL_SEED,
            "train_data": TRAIN_DATA_SEED,
            "eval": EVAL_SEED,
            "verify": VERIFY_SEED,
        },
        "config": {
            "text": "hidden 128, 4 layers, 4 heads, 2 kv heads, intermediate 512, tied embeddings",
            "vision": "embed 128, depth 4, 4 heads, patch 14, temporal patch 2, merge 2",
            "vocab_size": tokenizer.get_vocab_size(),
            "pixels": preprocessor_config(builder)["size"],
            "batch": args.batch,
            "lr": args.lr,
            "torch_threads": args.threads,
        },
        "parameters": n_params,
        **training,
        "total_wall_minutes": round((time.monotonic() - wall_start) / 60, 2),
        "total_cpu_minutes": round(time.process_time() / 60, 2),
        "held_out_torch": {"n_per_kind": 30 if args.quick else 300, "seed": EVAL_SEED, "results": final},
        "onnx_vs_torch_max_logit_diff": worst,
        "model_folder_bytes": folder_bytes(args.out_dir),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (args.out_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
