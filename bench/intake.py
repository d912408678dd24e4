"""How much draft-mode JPEG intake saves on a 12 MP photo, for the pixel budgets our models have.

Both paths end in the same model-ready array: the size the model's processor picks for the photo,
resized with bicubic as the processor does. (a) "draft" is the API's intake (`decode_image` with the
model's pixel target: the JPEG is DCT-scaled while decoding), (b) "full" decodes every pixel first.
They are timed alternately in the same run, several rounds, and compared by medians.

The last line is for the model the service runs on its hardware: Qwen2-VL-2B on the Hailo-10H, whose
HEF takes one 336x336 frame (`VLM.input_frame_shape()`; the backend squashes the image to it):
intake_speedup=<full ms / draft ms>. The CPU backend's 1,003,520-pixel budget is printed beside it;
there a 1/2-scale draft is the smallest that keeps the budget, and the entropy decoding that no DCT
scale shortens (about 40 % of a full decode) bounds the gain.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image

from api.image_intake import ImageLimits, decode_image
from npu_worker.cpu.qwen2vl_image import ImageProcessorConfig, smart_resize

WIDTH, HEIGHT = 4000, 3000
ROUNDS = 7
LIMITS = ImageLimits()


def photo_like_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG that compresses like a photo: smooth light, soft blobs of colour, edges, sensor noise."""
    rng = np.random.default_rng(seed)
    small_h, small_w = height // 8, width // 8  # smooth content is made small and scaled up
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    scene = np.empty((small_h, small_w, 3), dtype=np.float32)
    for channel in range(3):
        phase = rng.uniform(0, 2 * np.pi, 2)
        scene[:, :, channel] = 110 + 60 * np.sin(x / small_w * 3 + phase[0]) * np.cos(
            y / small_h * 2 + phase[1]
        )
    for _ in range(40):
        cx, cy, radius = rng.uniform(0, small_w), rng.uniform(0, small_h), rng.uniform(6, 75)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        scene += blob[:, :, None] * rng.uniform(-80, 80, 3).astype(np.float32)
    for _ in range(30):  # hard-edged objects: the detail a photo's high frequencies carry
        x0, y0 = rng.integers(0, small_w), rng.integers(0, small_h)
        scene[y0 : y0 + rng.integers(5, 80), x0 : x0 + rng.integers(5, 80)] = rng.uniform(0, 255, 3)
    smooth = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    noise = rng.standard_normal((height, width, 3), dtype=np.float32) * 4
    pixels = np.clip(np.asarray(smooth, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def bicubic_to(height: int, width: int) -> Callable[[np.ndarray], np.ndarray]:
    def resize(decoded: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(decoded).resize((width, height), Image.Resampling.BICUBIC))

    return resize


def qwen2vl_ready(max_pixels: int) -> tuple[int, int, Callable[[np.ndarray], np.ndarray]]:
    """Qwen2-VL's resize: to smart_resize's size for the original photo, bicubic."""
    height, width = smart_resize(HEIGHT, WIDTH, ImageProcessorConfig(max_pixels=max_pixels))
    return max_pixels, 0, bicubic_to(height, width)


def frame_ready(height: int, width: int) -> tuple[int, int, Callable[[np.ndarray], np.ndarray]]:
    """The Hailo VLM's resize: squashed to its fixed frame, bicubic (`npu_worker/hailo/vlm.py`)."""
    return height * width, 0, bicubic_to(height, width)


def clip_ready(side: int) -> tuple[int, int, Callable[[np.ndarray], np.ndarray]]:
    """CLIP's resize: short side to `side` (bicubic), then the centre `side` x `side` crop."""

    def resize(decoded: np.ndarray) -> np.ndarray:
        height, width = decoded.shape[:2]
        scale = side / min(height, width)
        new_w, new_h = max(side, int(width * scale)), max(side, int(height * scale))
        resized = Image.fromarray(decoded).resize((new_w, new_h), Image.Resampling.BICUBIC)
        left, top = (new_w - side) // 2, (new_h - side) // 2
        return np.asarray(resized.crop((left, top, left + side, top + side)))

    return side * side, side, resize


def main() -> None:
    photo = photo_like_jpeg(WIDTH, HEIGHT)
    print(f"photo {WIDTH}x{HEIGHT} JPEG, {len(photo) / 1e6:.1f} MB; {ROUNDS} rounds, paths alternating")
    # The Hailo-10H's Qwen2-VL frame comes last: the final line is its speedup.
    targets = {
        "demo VLM 12,544 px": qwen2vl_ready(12_544),
        "CLIP 288x288": clip_ready(288),
        "CPU Qwen2-VL 1,003,520 px": qwen2vl_ready(1_003_520),
        "Hailo Qwen2-VL 336x336": frame_ready(336, 336),
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for name, (pixels, min_side, resize) in targets.items():
            paths = {
                "draft": partial(decode_image, photo, LIMITS, pixels, min_side=min_side),
                "full": partial(decode_image, photo, LIMITS, None),
            }
            for path, intake in paths.items():
                start = time.perf_counter()
                resize(intake())
                times.setdefault((name, path), []).append((time.perf_counter() - start) * 1000)

    print(f"{'target':<27}{'decoded by draft':>18}{'draft ms':>10}{'full ms':>10}{'speedup':>9}")
    speedup = 0.0
    for name, (pixels, min_side, _) in targets.items():
        decoded = decode_image(photo, LIMITS, pixels, min_side=min_side).shape
        draft_ms = statistics.median(times[(name, "draft")])
        full_ms = statistics.median(times[(name, "full")])
        speedup = full_ms / draft_ms
        size = f"{decoded[1]}x{decoded[0]}"
        print(f"{name:<27}{size:>18}{draft_ms:>10.1f}{full_ms:>10.1f}{speedup:>9.2f}")
    print(f"intake_speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
