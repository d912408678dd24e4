"""The Hailo-10H GenAI server's next-token choice, step for step (hailort_server/genai/llm/post_process.cpp).

It differs from OpenAI semantics (npu_worker.sampling) in ways the backend must translate, so the
double computes it the device's way rather than reusing the product's sampler:

1. scores are divided by `temperature` (skipped when it is exactly 1.0);
2. `frequency_penalty` is a multiplicative repetition penalty over the SET of tokens generated so far
   in the context (not the prompt): positive scores are divided by it, negative ones multiplied
   (skipped when exactly 1.0);
3. do_sample False: argmax; otherwise keep the top_k scores, softmax them, keep those whose ascending
   cumulative probability exceeds 1 - top_p (always the best one), renormalise and draw one.

The draw uses numpy's generator seeded with `seed` (the device uses std::mt19937 + discrete_distribution,
so the same seed gives the same tokens on the double but not the same tokens as the device).
"""

from __future__ import annotations

from collections.abc import Set

import numpy as np

IGNORE = 1.0


class DeviceSampler:
    def __init__(
        self,
        temperature: float,
        top_p: float,
        top_k: int,
        frequency_penalty: float,
        do_sample: bool,
        seed: int | None,
    ) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.frequency_penalty = frequency_penalty
        self.do_sample = do_sample
        self.rng = np.random.default_rng(seed)

    def choose(self, logits: np.ndarray, history: Set[int]) -> int:
        scores = logits.astype(np.float32, copy=True)
        if self.temperature != IGNORE:
            scores /= np.float32(self.temperature)
        if self.frequency_penalty != IGNORE and history:
            ids = np.fromiter(history, dtype=np.int64, count=len(history))
            seen = scores[ids]
            penalty = np.float32(self.frequency_penalty)
            scores[ids] = np.where(seen > 0, seen / penalty, seen * penalty)
        if not self.do_sample:
            return int(np.argmax(scores))
        return self._sample(scores)

    def _sample(self, scores: np.ndarray) -> int:
        k = min(self.top_k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(scores[top], kind="stable")]  # ascending, as the device's min-heap yields
        top_scores = scores[top].astype(np.float64)
        probs = np.exp(top_scores - top_scores.max())
        probs /= probs.sum()
        keep = np.cumsum(probs) > (1.0 - self.top_p)
        keep[-1] = True
        kept_scores = top_scores[keep]
        weights = np.exp(kept_scores - kept_scores.max())
        weights /= weights.sum()
        return int(top[keep][self.rng.choice(weights.size, p=weights)])
