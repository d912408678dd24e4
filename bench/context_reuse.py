"""Time to first token of a follow-up turn, with and without context reuse.

A camera-style conversation: a picture and a question, the model's answer, then a follow-up question
about the same picture. The follow-up's time to first token (TTFT) is measured through the backends
the service runs, in this process, with reuse off (inference.context_reuse_entries 0: the whole
conversation is prefilled again) and on (only the new turn is prefilled); medians over --repeats,
each repeat with a new picture.

- demo: the CPU backend (ONNX Runtime) on the demo Qwen2-VL.
- hailo double: the Hailo backend on the HailoRT double (tests/hailo_double) with the published
  Qwen2-VL-2B figures on the Hailo-10H (hailo_model_zoo_genai): 8.4 tokens/s, so 1/8.4 s of device
  time per generated token, and a first token 0.92 s after a one-picture prompt, so the first
  question's prefill is given 0.92 s - 1/8.4 s spread over its tokens. The double's prompt is the demo
  model's (16 image tokens a picture, where the real HEF has 144), so this spreads the picture's cost
  over text tokens too: it understates what reuse saves on the device.

The last line is the Hailo double's figure, the one that stands for the device:
followup_ttft_speedup=<TTFT without reuse / TTFT with reuse>.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models"), str(ROOT / "tests" / "hailo_double")]

import shapes_world as sw  # noqa: E402

from npu_worker.backend import Backend, ImagePart, Message, SamplingParams, TextPart, Token  # noqa: E402
from npu_worker.config import ClipConfig, Config, HailoConfig, InferenceConfig, ModelConfig  # noqa: E402
from npu_worker.cpu.onnx_backend import OnnxBackend  # noqa: E402

DEMO = ROOT / "models" / "demo" / "qwen2-vl-demo"
MODEL = "qwen2-vl-demo"
PUBLISHED_TTFT_S = 0.92
PUBLISHED_TOKENS_PER_S = 8.4
GREEDY = SamplingParams(temperature=0, max_tokens=16)


def config(backend: str, reuse: bool, hef: str = "") -> Config:
    return Config(
        backend=backend,
        model=ModelConfig(path=str(DEMO), warmup=False),
        clip=ClipConfig(enabled=False),
        inference=InferenceConfig(context_reuse_entries=2 if reuse else 0),
        hailo=HailoConfig(vlm_hef=hef, context_save_min_tokens=0),
    )


def first_turn(seed: int) -> list[Message]:
    picture = np.asarray(sw.render(sw.random_scene(np.random.default_rng(seed), n_shapes=2, size=(112, 112))))
    return [Message("user", (ImagePart(picture), TextPart(sw.QUESTIONS["count"])))]


def answer(backend: Backend, messages: list[Message]) -> tuple[str, float]:
    """The whole greedy answer, and the seconds to its first token."""
    started = time.perf_counter()
    first: float | None = None
    pieces = []
    for event in backend.generate(MODEL, messages, GREEDY):
        if isinstance(event, Token):
            first = first or time.perf_counter() - started
            pieces.append(event.text)
    assert first is not None
    return "".join(pieces), first


def follow_up_ttft(backend: Backend, seed: int) -> float:
    first = first_turn(seed)
    reply, _ = answer(backend, first)
    second = [*first, Message.text("assistant", reply), Message("user", (TextPart(sw.QUESTIONS["shape"]),))]
    return answer(backend, second)[1]


def median_ttft(make: Callable[[bool], Backend], reuse: bool, repeats: int) -> float:
    backend = make(reuse)
    backend.load()
    try:
        follow_up_ttft(backend, 10_000)  # warm: sessions and caches, not measured
        return statistics.median(follow_up_ttft(backend, seed) for seed in range(repeats))
    finally:
        backend.unload()


def demo_backend(reuse: bool) -> Backend:
    return OnnxBackend(config("onnx", reuse))


def hailo_backend_maker(state: Path) -> Callable[[bool], Backend]:
    """The Hailo backend on the double, its prefill delay calibrated on the bench's first question."""
    from hailo_double_tools import make_vlm_hef, settings

    os.environ.update(
        {
            settings.STATE_DIR_VAR: str(state / "device"),
            settings.TOKEN_DELAY_VAR: str(1 / PUBLISHED_TOKENS_PER_S),
            settings.THREADS_VAR: "1",
        }
    )
    hef = str(make_vlm_hef(state, DEMO))

    from npu_worker.hailo.backend import HailoBackend

    def make(reuse: bool) -> Backend:
        return HailoBackend(config("hailo", reuse, hef))

    probe = make(False)
    probe.load()
    prompt_tokens = probe.count_tokens(MODEL, first_turn(0))
    probe.unload()
    per_token = (PUBLISHED_TTFT_S - 1 / PUBLISHED_TOKENS_PER_S) / prompt_tokens
    os.environ[settings.PREFILL_DELAY_VAR] = str(per_token)
    print(
        f"hailo double: {1000 / PUBLISHED_TOKENS_PER_S:.0f} ms per token, {per_token * 1000:.1f} ms per "
        f"prompt token ({prompt_tokens} tokens in the first question)"
    )
    return make


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    speedups = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("demo (CPU)", demo_backend), ("hailo double", hailo_backend_maker(Path(tmp)))):
            without = median_ttft(make, False, args.repeats)
            with_reuse = median_ttft(make, True, args.repeats)
            speedups[name] = without / with_reuse
            print(
                f"{name}: follow-up TTFT {without * 1000:.1f} ms without reuse, {with_reuse * 1000:.1f} ms "
                f"with, x{speedups[name]:.2f}"
            )
    print(f"followup_ttft_speedup={speedups['hailo double']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
