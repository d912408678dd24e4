"""Train the tiny demo CLIP on the shapes world and export it in the HF/optimum CLIP layout.

A CLIPModel built from transformers' own classes (tiny text and vision configs) is trained
contrastively on the CPU (2 threads, fixed seeds) on shapes-world images and captions, then written
to models/demo/clip-demo (configs, tokenizer, onnx/vision_model.onnx, onnx/text_model.onnx,
training_report.json) with golden fixtures for the runner's tests in tests/golden/clip.

Images are squashed to a square (no center crop): shapes-world images have any aspect ratio and
shapes may touch an edge, which a crop would cut away.

Run with the demo venv:  .venv-demo/bin/python models/make_demo_clip.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import numpy as np  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from demo_clip_data import (  # noqa: E402
    LABELS,
    TEMPLATES,
    ZERO_SHOT_PROMPT,
    ImagePool,
    label_text,
    make_pool,
    random_caption,
    swapped_caption,
    tokenizer_corpus,
    truth_matrix,
)
from demo_clip_export import check_onnx, export_onnx, save_configs  # noqa: E402
from demo_clip_golden import write_golden  # noqa: E402
from demo_clip_tokenizer import EOS, build_tokenizer, save_tokenizer  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig  # noqa: E402

from npu_worker.cpu.clip_image import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ClipImageConfig  # noqa: E402

IMAGE_SIDE, PATCH = 96, 12
MAX_TEXT_TOKENS = 32
PROJECTION_DIM = 64


@dataclass(frozen=True)
class Settings:
    steps: int
    batch: int
    pool_images: int
    easy_images: int
    easy_until: float  # fraction of the steps drawn only from the easy pool (shapes are learnt there)
    mix_until: float  # by this fraction of the steps the easy share has fallen linearly to zero
    lr: float
    warmup_steps: int
    max_minutes: float  # wall-clock budget (rendering included); a slower CPU gets fewer steps
    val_images: int
    hard_negative_share: float = 0.5  # multi-shape scenes that add a colour-swapped false caption
    train_seed: int = 1000
    easy_seed: int = 1001
    val_seed: int = 2000
    torch_seed: int = 0


FULL = Settings(
    steps=1400,
    batch=128,
    pool_images=24000,
    easy_images=4000,
    easy_until=0.25,
    mix_until=0.5,
    lr=2e-3,
    warmup_steps=20,
    max_minutes=14.0,
    val_images=300,
)
QUICK = Settings(
    steps=60,
    batch=64,
    pool_images=1500,
    easy_images=300,
    easy_until=0.25,
    mix_until=0.5,
    lr=2e-3,
    warmup_steps=10,
    max_minutes=3.0,
    val_images=100,
)


def log(message: str) -> None:
    print(f"[clip {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def clip_config(vocab_size: int, bos_id: int, eos_id: int) -> CLIPConfig:
    text = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TEXT_TOKENS,
        projection_dim=PROJECTION_DIM,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        image_size=IMAGE_SIDE,
        patch_size=PATCH,
        projection_dim=PROJECTION_DIM,
    )
    return CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=PROJECTION_DIM
    )


def image_config() -> ClipImageConfig:
    return ClipImageConfig(shortest_edge=None, resize_to=(IMAGE_SIDE, IMAGE_SIDE), do_center_crop=False)


def pixel_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> normalised float32 [N, 3, H, W], as CLIPImageProcessor does it."""
    scaled = torch.from_numpy((pixels.astype(np.float64) / 255.0).astype(np.float32))
    mean, std = torch.tensor(OPENAI_CLIP_MEAN), torch.tensor(OPENAI_CLIP_STD)
    return ((scaled - mean) / std).permute(0, 3, 1, 2).contiguous()


def token_tensor(tokenizer: Tokenizer, texts: list[str]) -> torch.Tensor:
    return torch.tensor([e.ids for e in tokenizer.encode_batch(texts)], dtype=torch.long)


def contrastive_loss(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy, with every caption that is true of an image a positive.

    logits and truth are [images, captions]; a caption true of no image in the batch (a hard
    negative) only competes in the image-to-text direction."""
    targets = truth.float()
    per_image = -(targets / targets.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    text_positives = targets.sum(0)
    per_text = -(targets / text_positives.clamp(min=1) * F.log_softmax(logits, 0)).sum(0)
    return (per_image + per_text[text_positives > 0].mean()) / 2


def easy_share(progress: float, settings: Settings) -> float:
    """Easy-first curriculum: only easy scenes, then a linear hand-over to the full shapes world."""
    if progress < settings.easy_until:
        return 1.0
    return max(0.0, (settings.mix_until - progress) / (settings.mix_until - settings.easy_until))


def training_batch(
    pools: tuple[ImagePool, ImagePool],
    easy_count: int,
    tokenizer: Tokenizer,
    settings: Settings,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """easy_count scenes from the easy pool, the rest from the full one, each with a fresh caption,
    then extra hard-negative captions: truth is [images, captions + extras]."""
    pixels, scenes, masks = [], [], []
    for pool, count in zip(pools, (easy_count, settings.batch - easy_count), strict=True):
        index = rng.choice(len(pool.scenes), size=count, replace=False)
        pixels.append(pool.pixels[index])
        scenes += [pool.scenes[i] for i in index]
        masks.append(pool.masks[index])
    captions = [random_caption(scene, rng) for scene in scenes]
    for scene in scenes:
        if len(scene.shapes) > 1 and rng.random() < settings.hard_negative_share:
            captions += [c for c in [swapped_caption(scene, rng)] if c is not None]
    truth = truth_matrix(np.concatenate(masks), np.array([c.masks() for c in captions], dtype=np.int64))
    return (
        pixel_tensor(np.concatenate(pixels)),
        token_tensor(tokenizer, [c.text for c in captions]),
        torch.from_numpy(truth),
    )


def label_embeddings(model: CLIPModel, tokenizer: Tokenizer, ensemble: bool) -> torch.Tensor:
    """Normalised text embeddings of the 18 labels: the plain prompt, or the five-template average."""
    templates = TEMPLATES if ensemble else (ZERO_SHOT_PROMPT,)
    rows = []
    for template in templates:
        texts = [template.format(label_text(c, s)) for c, s in LABELS]
        rows.append(
            F.normalize(
                model.get_text_features(input_ids=token_tensor(tokenizer, texts)).pooler_output, dim=-1
            )
        )
    return F.normalize(torch.stack(rows).mean(0), dim=-1)


@torch.no_grad()
def zero_shot_accuracy(model: CLIPModel, tokenizer: Tokenizer, val: ImagePool) -> dict[str, float]:
    model.eval()
    images = F.normalize(
        model.get_image_features(pixel_values=pixel_tensor(val.pixels)).pooler_output, dim=-1
    )
    truth = np.array([LABELS.index((s.shapes[0].colour, s.shapes[0].kind)) for s in val.scenes])
    result = {}
    for name, ensemble in (("plain", False), ("ensemble", True)):
        predicted = (images @ label_embeddings(model, tokenizer, ensemble).T).argmax(1).numpy()
        result[name] = float((predicted == truth).mean())
    model.train()
    return result


def learning_rate(step: int, progress: float, settings: Settings) -> float:
    """Linear warm-up, then a cosine decay over the run's progress."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    return settings.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def run_progress(step: int, started: float, settings: Settings) -> float:
    """How far the run is, 0..1: by steps, or by the wall-clock budget when the CPU is slower
    (shared with other training), so the curriculum and the learning-rate decay always complete."""
    return max(step / settings.steps, (time.time() - started) / 60 / settings.max_minutes)


def train(model: CLIPModel, tokenizer: Tokenizer, settings: Settings, val: ImagePool) -> dict[str, object]:
    config = image_config()
    started = time.time()
    easy = make_pool(settings.easy_images, settings.easy_seed, config, easy=True)
    pool = make_pool(settings.pool_images, settings.train_seed, config)
    data_minutes = (time.time() - started) / 60
    log(f"rendered {settings.pool_images}+{settings.easy_images} training images in {data_minutes:.1f} min")
    rng = np.random.default_rng(settings.train_seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        betas=(0.9, 0.98),
    )
    history = []
    train_start = time.time()
    step = 0
    model.train()
    while (progress := run_progress(step, started, settings)) < 1.0:
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, progress, settings)
        easy_count = round(settings.batch * easy_share(progress, settings))
        pixels, ids, truth = training_batch((easy, pool), easy_count, tokenizer, settings, rng)
        out = model(input_ids=ids, pixel_values=pixels)
        loss = contrastive_loss(out.logits_per_image, truth)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0:
            accuracy = zero_shot_accuracy(model, tokenizer, val) if step % 100 == 0 else None
            history.append(
                {
                    "step": step,
                    "progress": round(progress, 3),
                    "loss": round(loss.item(), 4),
                    "accuracy": accuracy,
                }
            )
            log(
                f"step {step} ({progress:.0%}) loss {loss.item():.3f} scale {model.logit_scale.exp():.1f} "
                f"{(time.time() - train_start) / max(1, step):.2f} s/step acc {accuracy}"
            )
        step += 1
    return {
        "steps_done": step,
        "stopped_by": "steps" if step >= settings.steps else "time budget",
        "data_minutes": round(data_minutes, 2),
        "training_minutes": round((time.time() - started) / 60, 2),
        "history": history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "models/demo/clip-demo")
    parser.add_argument("--golden-dir", type=Path, default=ROOT / "tests/golden/clip")
    parser.add_argument("--quick", action="store_true", help="a short run to check the pipeline")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads; use 1 while another training shares the 2 cores (2 + 2 threads on 2 cores "
        "measured ~7x slower per step than 1 thread)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    torch.manual_seed(settings.torch_seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer(tokenizer_corpus())
    save_tokenizer(tokenizer, args.out_dir, MAX_TEXT_TOKENS)
    eos_id = tokenizer.token_to_id(EOS)
    tokenizer.enable_padding(pad_id=eos_id, pad_token=EOS)
    tokenizer.enable_truncation(MAX_TEXT_TOKENS)
    model = CLIPModel(clip_config(tokenizer.get_vocab_size(), eos_id - 1, eos_id))
    params = sum(p.numel() for p in model.parameters())
    log(f"{params} parameters, vocabulary {tokenizer.get_vocab_size()}, settings {settings}")

    val = make_pool(settings.val_images, settings.val_seed, image_config(), n_shapes=1)
    run = train(model, tokenizer, settings, val)
    accuracy = zero_shot_accuracy(model, tokenizer, val)
    log(f"trained in {run['training_minutes']} min; torch-side zero-shot top-1 {accuracy}")

    save_configs(model, args.out_dir)
    export_onnx(model, args.out_dir)
    onnx_difference = check_onnx(model, args.out_dir)
    write_golden(model, args.out_dir, args.golden_dir)
    report = {
        "quick": args.quick,
        "threads": args.threads,
        "settings": asdict(settings),
        "parameters": params,
        "image_size": IMAGE_SIDE,
        "patch_size": PATCH,
        "projection_dim": PROJECTION_DIM,
        "vocab_size": tokenizer.get_vocab_size(),
        **run,
        "logit_scale": float(model.logit_scale.detach()),
        "torch_zero_shot_top1": {"images": settings.val_images, "seed": settings.val_seed, **accuracy},
        "onnx_vs_torch_max_abs": onnx_difference,
        "file_bytes": {
            str(p.relative_to(args.out_dir)): p.stat().st_size
            for p in sorted(args.out_dir.rglob("*"))
            if p.is_file()
        },
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    (args.out_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out_dir} and {args.golden_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
