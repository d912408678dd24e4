"""Turn CLIP embeddings into scores and ranked labels: pure numpy, no I/O.

Score semantics (docs/API_SPEC.md, /v1/classify):
- default: a softmax over the request's prompts of logit_scale x cosine similarity. One image's
  scores sum to 1: the prompts compete, as in CLIP's zero-shot classification.
- multi_label: each prompt is scored on its own against the negative prompts - a softmax over
  [prompt, negatives...] whose first entry is kept - so several prompts can score high at once.
Embeddings arrive L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SCORE_DECIMALS = 6


def similarity(image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
    """Cosine similarities, shape (images, texts), of L2-normalised embeddings."""
    return np.asarray(image_embeds, np.float64) @ np.asarray(text_embeds, np.float64).T


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def classify_scores(
    image_embeds: np.ndarray,
    prompt_embeds: np.ndarray,
    logit_scale: float,
    negative_embeds: np.ndarray | None = None,
) -> np.ndarray:
    """Scores in [0, 1], shape (images, prompts): competing prompts, or (with negatives) multi-label."""
    logits = logit_scale * similarity(image_embeds, prompt_embeds)
    if negative_embeds is None:
        return softmax(logits)
    negatives = logit_scale * similarity(image_embeds, negative_embeds)
    peak = negatives.max(axis=-1, keepdims=True)
    log_negatives = peak + np.log(np.exp(negatives - peak).sum(axis=-1, keepdims=True))
    # softmax([l_p, l_n1, ...])[0] = 1 / (1 + sum_n exp(l_n - l_p)), a sigmoid of l_p - logsumexp(l_n)
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(log_negatives - logits, -700.0, 700.0))))


def ranked(
    prompts: Sequence[str], scores: np.ndarray, threshold: float, top_k: int | None
) -> list[dict[str, Any]]:
    """Prompts by falling score (ties in request order), cut at `threshold` then `top_k`, ranked 1..n.

    The threshold is compared with the score as it is reported (rounded to SCORE_DECIMALS).
    """
    rounded = [round(float(s), SCORE_DECIMALS) for s in scores]
    order = sorted(range(len(prompts)), key=lambda i: (-rounded[i], i))
    kept = [i for i in order if rounded[i] >= threshold][:top_k]
    return [{"text": prompts[i], "score": rounded[i], "rank": r} for r, i in enumerate(kept, start=1)]
