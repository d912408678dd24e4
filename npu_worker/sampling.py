"""Choose the next token from a row of logits with OpenAI's sampling semantics, in plain numpy.

Backend-independent so that every runner samples the same way: OpenAI's additive penalties over the
tokens generated so far and llama.cpp's multiplicative repetition penalty over the last tokens of the
context, then greedy (temperature 0) or temperature, top-k and top-p (nucleus) sampling with one
seeded generator per request, so the same seed gives the same text.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import numpy as np

from npu_worker.backend import InvalidRequestError, SamplingParams
from npu_worker.json_constraint import JsonConstraint

# Nucleus sampling first looks for the nucleus among this many most likely tokens and only sorts the
# whole vocabulary when they hold less than top_p of the mass (a full sort of 150k logits costs ~10 ms).
NUCLEUS_POOL = 256


class TokenSampler:
    """The sampling state of one request: its random generator and the counts of generated tokens."""

    def __init__(
        self,
        params: SamplingParams,
        end_ids: Iterable[int] = (),
        constraint: JsonConstraint | None = None,
        context: Iterable[int] = (),
    ) -> None:
        """`context`: the prompt's token ids, which the repetition penalty counts too."""
        if not params.temperature >= 0:
            raise InvalidRequestError(f"temperature must be >= 0, got {params.temperature}", "temperature")
        if not 0 <= params.top_p <= 1:
            raise InvalidRequestError(f"top_p must be in [0, 1], got {params.top_p}", "top_p")
        if params.top_k < 0:
            raise InvalidRequestError(f"top_k must be >= 0, got {params.top_k}", "top_k")
        if not params.repeat_penalty > 0:
            raise InvalidRequestError(
                f"repeat_penalty must be > 0, got {params.repeat_penalty}", "repeat_penalty"
            )
        if params.repeat_last_n < -1:
            raise InvalidRequestError(
                f"repeat_last_n must be >= -1, got {params.repeat_last_n}", "repeat_last_n"
            )
        self.temperature = params.temperature
        self.top_p = params.top_p
        self.top_k = params.top_k
        self.frequency_penalty = params.frequency_penalty
        self.presence_penalty = params.presence_penalty
        self.repeat_penalty = params.effective_repeat_penalty
        window = None if params.repeat_last_n == -1 else max(params.repeat_last_n, 0)
        self.recent = collections.deque(context if self.repeat_penalty != 1.0 else (), maxlen=window)
        self.rng = np.random.default_rng(params.seed)
        self.counts: dict[int, int] = {}
        self.generated = 0
        self.min_tokens = params.min_tokens
        self.end_ids = np.asarray(list(end_ids), dtype=np.int64)
        self.constraint = constraint  # structured output: tokens that would break the schema are masked

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def choose(self, logits: np.ndarray) -> int:
        """The next token id from a 1-D row of logits; records it for the penalties."""
        logits = self._penalised(logits)
        if self.constraint is not None:
            logits = self.constraint.allowed(logits)
        if self.generated < self.min_tokens and self.end_ids.size:
            logits = np.array(logits, dtype=np.float64)
            logits[self.end_ids] = -np.inf  # min_tokens: the sequence may not end yet
        token = int(np.argmax(logits)) if self.greedy else self._sample(logits)
        if self.constraint is not None:
            self.constraint.accept(token)
        self.counts[token] = self.counts.get(token, 0) + 1
        if self.repeat_penalty != 1.0:
            self.recent.append(token)
        self.generated += 1
        return token

    def _penalised(self, logits: np.ndarray) -> np.ndarray:
        """A copy with the penalties applied: first the repetition penalty over the recent context
        (llama.cpp's order), then logit[t] -= count[t] * frequency + (count[t] > 0) * presence over
        the generated tokens."""
        additive = self.counts and (self.frequency_penalty != 0 or self.presence_penalty != 0)
        if not additive and not self.recent:
            return logits
        penalised = logits.astype(np.float64)
        if self.recent:
            seen = np.unique(np.fromiter(self.recent, dtype=np.int64, count=len(self.recent)))
            seen = seen[seen < penalised.size]
            values = penalised[seen]
            penalised[seen] = np.where(values > 0, values / self.repeat_penalty, values * self.repeat_penalty)
        if additive:
            ids = np.fromiter(self.counts.keys(), dtype=np.int64, count=len(self.counts))
            counts = np.fromiter(self.counts.values(), dtype=np.float64, count=len(self.counts))
            penalised[ids] -= counts * self.frequency_penalty + self.presence_penalty
        return penalised

    def _sample(self, logits: np.ndarray) -> int:
        scaled = logits.astype(np.float64) / self.temperature
        candidates = np.arange(scaled.size)
        if 0 < self.top_k < scaled.size:
            candidates = np.argpartition(-scaled, self.top_k - 1)[: self.top_k]
            scaled = scaled[candidates]
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if self.top_p < 1.0:
            candidates, probs = self._nucleus(candidates, probs)
        cumulative = np.cumsum(probs)
        index = int(np.searchsorted(cumulative, self.rng.random() * cumulative[-1], side="right"))
        return int(candidates[min(index, candidates.size - 1)])

    def _nucleus(self, candidates: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fewest most likely tokens whose probability reaches top_p (at least one)."""
        order = None
        if probs.size > NUCLEUS_POOL:
            pool = np.argpartition(-probs, NUCLEUS_POOL - 1)[:NUCLEUS_POOL]
            if probs[pool].sum() >= self.top_p:
                order = pool[np.argsort(-probs[pool], kind="stable")]
        if order is None:
            order = np.argsort(-probs, kind="stable")
        sorted_probs = probs[order]
        mass_before = np.cumsum(sorted_probs) - sorted_probs
        keep = max(1, int(np.count_nonzero(mass_before < self.top_p)))
        return candidates[order[:keep]], sorted_probs[:keep]
