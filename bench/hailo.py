"""The Hailo backend's figures on a Hailo-10H, beside the ones Hailo publishes.

Measured through HailoBackend, the code the service runs: model load (VDevice, VLM HEF and CLIP HEF,
no warm-up), time to first token and decode tokens/s of a greedy answer about one picture (medians
over --repeats), CLIP image-encoder images/s at batch 1 and batch 8 (host-side resize included).
Published: Qwen2-VL-2B-Instruct load 9.7 s, first token 0.92 s, 8.4 tokens/s (hailo_model_zoo_genai,
HailoRT 5.1.1); clip_resnet_50x4_image_encoder 63 images/s at batch 1, 157 at batch 8.

Needs HailoRT and a Hailo device: without them it says so, exits 0 and its last line is
hailo_bench=skipped_no_device. $HAILO_VISION_BENCH_HAILORT=<dir> puts a HailoRT stand-in (such as
tests/hailo_double) first on sys.path and skips the device check; that tests the bench, its figures
mean nothing. The config is --config (or the usual lookup), run with backend hailo.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]
STANDIN_ENV = "HAILO_VISION_BENCH_HAILORT"
if os.environ.get(STANDIN_ENV):
    sys.path.insert(0, os.environ[STANDIN_ENV])

import shapes_world as sw  # noqa: E402

from npu_worker.backend import (  # noqa: E402
    DeviceBusyError,
    Finish,
    ImagePart,
    Message,
    ModelLoadError,
    SamplingParams,
    TextPart,
)
from npu_worker.config import Config  # noqa: E402
from npu_worker.config_load import load_config  # noqa: E402
from npu_worker.hailo.backend import HailoBackend, resolve_hef  # noqa: E402
from npu_worker.hailo.clip import HailoClipImageEncoder  # noqa: E402
from npu_worker.hailo.holders import device_nodes  # noqa: E402
from npu_worker.hailo.runtime import import_hailo  # noqa: E402

PUBLISHED = {"load_s": 9.7, "ttft_s": 0.92, "tokens_per_s": 8.4, "clip_fps_b1": 63.0, "clip_fps_b8": 157.0}
LABELS = {
    "load_s": "model load, s (VLM + CLIP)",
    "ttft_s": "time to first token, s",
    "tokens_per_s": "decode tokens/s",
    "clip_fps_b1": "CLIP images/s, batch 1",
    "clip_fps_b8": "CLIP images/s, batch 8",
}
QUESTION = "Describe the picture in detail."


def bench_config(path: str | None) -> Config:
    config = load_config(path)
    return dataclasses.replace(
        config,
        backend="hailo",
        model=dataclasses.replace(config.model, warmup=False),
        resources=dataclasses.replace(config.resources, max_batch_size=1),
    )


def picture(height: int = 336, width: int = 336) -> np.ndarray:
    """A shapes-world scene as RGB uint8 pixels of the given size."""
    scene = sw.random_scene(np.random.default_rng(0), n_shapes=3)
    return np.asarray(sw.render(scene).convert("RGB").resize((width, height), Image.Resampling.BICUBIC))


def time_answer(backend: HailoBackend, tokens: int) -> tuple[float, float, int]:
    """(time to first token, decode tokens/s, tokens) of one greedy answer."""
    assert backend.vlm is not None
    messages = [Message("user", (ImagePart(picture()), TextPart(QUESTION)))]
    params = SamplingParams(max_tokens=tokens, temperature=0)
    started = time.perf_counter()
    first, count = None, 0
    for event in backend.generate(backend.vlm.info.id, messages, params):
        if isinstance(event, Finish):
            count = event.completion_tokens
            break
        first = first or time.perf_counter()
    ended = time.perf_counter()
    first = first or ended
    rate = (count - 1) / (ended - first) if count > 1 and ended > first else float("nan")
    return first - started, rate, count


def time_clip(encoder: HailoClipImageEncoder, count: int) -> float:
    """Images/s through the encoder, the frames already at its input size."""
    height, width, _ = encoder.input_shape
    frames = [picture(height, width)] * count
    encoder.embed(frames[: encoder.batch_size])  # warm-up
    started = time.perf_counter()
    encoder.embed(frames)
    return count / (time.perf_counter() - started)


def clip_batch8(backend: HailoBackend, config: Config, images: int) -> float:
    """A second encoder of the same HEF configured for batch 8, on the backend's VDevice."""
    text = backend.clip_text
    assert text is not None
    encoder = HailoClipImageEncoder(
        import_hailo(),
        backend.vdevice,
        resolve_hef(config.clip.path, config.hailo.clip_hef, "hailo.clip_hef"),
        text.image_config,
        text.embedding_dim,
        8,
        float_output=config.hailo.clip_output == "float32",
        timeout_s=config.hailo.read_timeout_s,
        failures=backend.failures,
    )
    try:
        return time_clip(encoder, images)
    finally:
        encoder.release()


def report(measured: dict[str, float]) -> None:
    print(f"{'':<28} {'measured':>9} {'published':>10}")
    for key, label in LABELS.items():
        value = measured.get(key, float("nan"))
        print(f"{label:<28} {value:>9.2f} {PUBLISHED[key]:>10.2f}")
    print("(published: Qwen2-VL-2B-Instruct and clip_resnet_50x4_image_encoder on Hailo-10H)")
    fields = " ".join(f"{key}={measured.get(key, float('nan')):.3f}" for key in LABELS)
    print(f"hailo_bench=ok {fields}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file with the hailo section (default: the lookup order)")
    parser.add_argument("--repeats", type=int, default=3, help="answers timed (medians reported)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per answer")
    parser.add_argument("--clip-images", type=int, default=64, help="images per CLIP measurement")
    args = parser.parse_args()
    standin = bool(os.environ.get(STANDIN_ENV))
    if importlib.util.find_spec("hailo_platform") is None or not (standin or device_nodes()):
        print("bench/hailo.py needs a Hailo-10H (/dev/hailo0) and HailoRT's Python package hailo_platform;")
        print("not found here, so nothing was measured (run `hailo-vision doctor` on the Pi).")
        print("hailo_bench=skipped_no_device")
        return 0
    if standin:
        print(f"HailoRT stand-in from ${STANDIN_ENV}: these figures say nothing about the hardware")
    config = bench_config(args.config)
    backend = HailoBackend(config)
    started = time.perf_counter()
    try:
        backend.load()
    except DeviceBusyError as exc:
        print(f"the device is busy: {exc.message}")
        print("hailo_bench=skipped_device_busy")
        return 0
    except ModelLoadError as exc:
        print(f"cannot load the models: {exc.message}")
        print("hailo_bench=failed")
        return 1
    measured = {"load_s": time.perf_counter() - started}
    try:
        time_answer(backend, 2)  # warm-up
        answers = [time_answer(backend, args.tokens) for _ in range(args.repeats)]
        measured["ttft_s"] = statistics.median(a[0] for a in answers)
        measured["tokens_per_s"] = statistics.median(a[1] for a in answers)
        print(f"{args.repeats} greedy answers of up to {args.tokens} tokens ({answers[-1][2]} generated)")
        if backend.clip_images is not None:
            measured["clip_fps_b1"] = time_clip(backend.clip_images, args.clip_images)
            measured["clip_fps_b8"] = clip_batch8(backend, config, args.clip_images)
    finally:
        backend.unload()
    report(measured)
    return 0


if __name__ == "__main__":
    sys.exit(main())
