"""How much the Qwen2-VL runner costs over bare decoder runs, on the committed demo model.

Same inputs for both: one shapes-world image and a question. The runner generates N tokens greedily
(end-of-sequence ids disabled so every run has the same length); the bare loop feeds the same prompt
embeddings, then the embeddings of the same N-1 tokens, to decoder_model_merged with plain
session.run, passing each run's present key/values back as the next past. The two alternate (in
flipping order) REPEATS times and the medians are compared; the last line is the ratio of decode rates.

Sessions use one intra-op thread unless --threads says otherwise: on a shared two-core machine ONNX
Runtime's spinning pool threads make both loops swing by 2-4x from run to run, which would drown the
few percent being measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import shapes_world as sw  # noqa: E402

from npu_worker.backend import ImagePart, Message, SamplingParams, TextPart, Token  # noqa: E402
from npu_worker.cpu.mrope import decode_positions  # noqa: E402
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner  # noqa: E402

DEFAULT_MODEL = ROOT / "models" / "demo" / "qwen2-vl-demo"


@dataclasses.dataclass
class Timing:
    prefill_ms: float  # runner: request to first token (image, template, prefill); bare: prefill run
    tokens_per_s: float  # decode steps after the first token


def time_runner(runner: Qwen2VLRunner, messages: list[Message], n_tokens: int) -> tuple[Timing, list[int]]:
    start = time.perf_counter()
    stamps, ids = [], []
    for event in runner.generate(messages, SamplingParams(temperature=0, max_tokens=n_tokens)):
        if isinstance(event, Token):
            stamps.append(time.perf_counter())
            ids.append(event.token_id)
    decode_s = stamps[-1] - stamps[0]
    return Timing((stamps[0] - start) * 1e3, (len(ids) - 1) / decode_s), ids


def time_bare(
    runner: Qwen2VLRunner, embeds: np.ndarray, positions: np.ndarray, delta: int, steps: np.ndarray
) -> Timing:
    """Prefill then one plain session.run per step embedding, presents fed back as pasts."""
    session = runner.decoder.session
    past_names = runner.decoder.past_names
    prompt_len = embeds.shape[1]
    feed: dict[str, np.ndarray] = {name: runner.decoder.empty_past for name in past_names}
    feed |= {
        "inputs_embeds": embeds,
        "attention_mask": np.ones((1, prompt_len), dtype=np.int64),
        "position_ids": positions[:, None, :],
    }
    start = time.perf_counter()
    outputs = session.run(None, feed)
    prefilled = time.perf_counter()
    for k, step in enumerate(steps):
        past_len = prompt_len + k
        feed = dict(zip(past_names, outputs[1:], strict=True))
        feed |= {
            "inputs_embeds": step,
            "attention_mask": np.ones((1, past_len + 1), dtype=np.int64),
            "position_ids": decode_positions(past_len, delta),
        }
        outputs = session.run(None, feed)
    done = time.perf_counter()
    return Timing((prefilled - start) * 1e3, len(steps) / (done - prefilled))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--decoder-variant", default=None, help="e.g. q4 for decoder_model_merged_q4.onnx")
    parser.add_argument("--tokens", type=int, default=200, help="tokens generated per run")
    parser.add_argument("--repeats", type=int, default=9, help="alternations of runner and bare loop")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()

    runner = Qwen2VLRunner(args.model_dir, decoder_variant=args.decoder_variant, threads=args.threads)
    runner.config = dataclasses.replace(runner.config, eos_token_ids=frozenset())  # fixed-length runs
    scene = sw.random_scene(np.random.default_rng(7), n_shapes=2, size=(320, 240))
    messages = [Message("user", (ImagePart(np.asarray(sw.render(scene))), TextPart(sw.QUESTIONS["count"])))]

    _, ids = time_runner(runner, messages, args.tokens)  # warm-up; fixes the token sequence
    prompt = runner.prompts.build(messages)
    positions, delta = runner.rope_positions(prompt)
    embeds = runner.prompt_embeddings(prompt).astype(runner.decoder.embed_dtype)
    steps = np.stack([runner.token_embedding(t) for t in ids[:-1]])
    time_bare(runner, embeds, positions, delta, steps)  # warm-up

    ours, bare = [], []
    for repeat in range(args.repeats):
        if repeat % 2:
            bare.append(time_bare(runner, embeds, positions, delta, steps))
        timing, again = time_runner(runner, messages, args.tokens)
        if again != ids:
            raise SystemExit("the runner's greedy tokens changed between runs")
        ours.append(timing)
        if not repeat % 2:
            bare.append(time_bare(runner, embeds, positions, delta, steps))

    def median(timings: list[Timing], field: str) -> float:
        return statistics.median(getattr(t, field) for t in timings)

    print(
        f"model {args.model_dir.name}: prompt {prompt.input_ids.size} tokens, {len(ids)} generated, "
        f"{args.repeats} alternating runs, {args.threads} intra-op thread(s), medians"
    )
    print(f"{'':>8} {'prefill ms':>11} {'decode tok/s':>13}")
    print(f"{'runner':>8} {median(ours, 'prefill_ms'):>11.2f} {median(ours, 'tokens_per_s'):>13.1f}")
    print(f"{'bare':>8} {median(bare, 'prefill_ms'):>11.2f} {median(bare, 'tokens_per_s'):>13.1f}")
    print("(runner prefill: image preprocessing, vision encoder, embeddings, prefill; bare: the prefill run)")
    print(f"engine_vs_bare_ratio={median(ours, 'tokens_per_s') / median(bare, 'tokens_per_s'):.3f}")


if __name__ == "__main__":
    main()
