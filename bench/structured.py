"""What constraining the output to a JSON Schema costs per generated token, on the demo VLM (CPU).

Two decodes of the same length, side by side, alternating over rounds on this noisy machine: free
text (end-of-sequence suppressed, so every run has its full length) and JSON held to a schema whose
string cannot close before the end (`minLength`), so llguidance works on every token. The cost per
token is the slope between 8- and 72-token runs (the prompt's prefill cancels out). The last line is
`constrained_token_overhead=<constrained per-token time / free per-token time>`; the Pi's real
Qwen2-VL-2B has a 151,646-token vocabulary where the demo has 436, so the mask is also timed on a
vocabulary of that size.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import shapes_world  # noqa: E402

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart  # noqa: E402
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner  # noqa: E402

ROUNDS = 15
SHORT, LONG = 8, 72
LONG_STRING = json.dumps({"type": "string", "minLength": 4 * LONG})


def timed(runner: Qwen2VLRunner, messages: list[Message], tokens: int, constrained: bool) -> float:
    params = SamplingParams(
        max_tokens=tokens,
        temperature=1.0,
        seed=1,
        min_tokens=0 if constrained else tokens,
        json_schema=LONG_STRING if constrained else "",
    )
    started = time.perf_counter()
    generated = sum(1 for _ in runner.generate(messages, params)) - 1
    elapsed = time.perf_counter() - started
    assert generated == tokens, (generated, tokens)
    return elapsed


def main() -> None:
    runner = Qwen2VLRunner(ROOT / "models/demo/qwen2-vl-demo", threads=1)
    scene = shapes_world.random_scene(np.random.default_rng(1), n_shapes=1)
    messages = [Message("user", (ImagePart(np.asarray(shapes_world.render(scene))), TextPart("What is it?")))]
    slopes: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for constrained in (False, True):
            short = timed(runner, messages, SHORT, constrained)
            long = timed(runner, messages, LONG, constrained)
            slopes[constrained].append((long - short) / (LONG - SHORT))
    free, held = statistics.median(slopes[False]), statistics.median(slopes[True])
    print(
        f"demo VLM (436 tokens): free {free * 1000:.3f} ms/token, JSON-constrained {held * 1000:.3f} ms/token"
    )
    print(f"mask on a Qwen2-VL-2B-sized row (151,936 logits): {mask_ms(151_936):.3f} ms/token")
    print(f"constrained_token_overhead={held / free:.2f}  (the cost of the guarantee; no target set)")


def mask_ms(width: int) -> float:
    """The mask application alone on a row as wide as the 2B model's logits (the grammar engine's
    own work scales with the grammar, not the vocabulary, thanks to its token trie)."""
    allow = np.random.default_rng(0).random(width) > 0.5
    logits = np.random.default_rng(1).standard_normal(width).astype(np.float32)
    started = time.perf_counter()
    for _ in range(200):
        np.where(allow, logits, -np.inf)
    return (time.perf_counter() - started) / 200 * 1000


if __name__ == "__main__":
    main()
