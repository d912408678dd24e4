"""The score semantics of /v1/classify and /v1/match, on hand-made unit vectors (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from api.clip_request import check_regions
from api.clip_scoring import classify_scores, ranked, similarity, softmax
from api.errors import APIError


def _unit(*rows: list[float]) -> np.ndarray:
    matrix = np.array(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


IMAGE = _unit([1.0, 0.2, 0.0])
PROMPTS = _unit([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.7, 0.0])
NEGATIVES = _unit([0.0, 0.0, 1.0], [0.1, 0.1, 1.0])
SCALE = 20.0


def test_default_scores_are_a_softmax_over_the_prompts() -> None:
    scores = classify_scores(IMAGE, PROMPTS, SCALE)
    cosines = (IMAGE @ PROMPTS.T)[0]
    expected = np.exp(SCALE * cosines) / np.exp(SCALE * cosines).sum()
    np.testing.assert_allclose(scores[0], expected, rtol=1e-6)
    assert scores.sum() == pytest.approx(1.0)


def test_multi_label_scores_each_prompt_against_the_negatives_alone() -> None:
    scores = classify_scores(IMAGE, PROMPTS, SCALE, NEGATIVES)[0]
    for index, prompt in enumerate(PROMPTS):
        logits = SCALE * (IMAGE @ np.vstack([prompt, NEGATIVES]).T)[0]
        assert scores[index] == pytest.approx(np.exp(logits[0]) / np.exp(logits).sum(), rel=1e-6)
    assert scores.sum() > 1.0  # independent: two prompts near the image both score high
    assert sorted(scores)[-2] > 0.9


def test_a_prompt_does_not_change_another_prompts_multi_label_score() -> None:
    alone = classify_scores(IMAGE, PROMPTS[:1], SCALE, NEGATIVES)[0, 0]
    with_others = classify_scores(IMAGE, PROMPTS, SCALE, NEGATIVES)[0, 0]
    assert alone == pytest.approx(with_others)
    assert classify_scores(IMAGE, PROMPTS[:1], SCALE)[0, 0] == pytest.approx(1.0)


def test_huge_logits_stay_finite() -> None:
    for negatives in (None, NEGATIVES):
        scores = classify_scores(IMAGE, PROMPTS, 1e4, negatives)
        assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))


def test_similarity_is_the_cosine_matrix_and_softmax_rows_sum_to_one() -> None:
    images = _unit([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])
    cosines = similarity(images, PROMPTS)
    assert cosines.shape == (2, 3)
    assert cosines[0, 0] == pytest.approx(1.0) and cosines[1, 0] == pytest.approx(0.0)
    np.testing.assert_allclose(softmax(SCALE * cosines).sum(axis=1), [1.0, 1.0])


def test_ranked_sorts_cuts_at_the_threshold_then_top_k() -> None:
    prompts = ["a", "b", "c", "d"]
    scores = np.array([0.1, 0.4, 0.3, 0.2])
    everything = ranked(prompts, scores, 0.0, None)
    assert [c["text"] for c in everything] == ["b", "c", "d", "a"]
    assert [c["rank"] for c in everything] == [1, 2, 3, 4]
    assert [c["text"] for c in ranked(prompts, scores, 0.25, None)] == ["b", "c"]
    assert [c["text"] for c in ranked(prompts, scores, 0.0, 3)] == ["b", "c", "d"]
    assert [c["text"] for c in ranked(prompts, scores, 0.25, 1)] == ["b"]
    assert ranked(prompts, scores, 0.5, None) == []


def test_ranked_keeps_request_order_on_ties_and_thresholds_the_reported_score() -> None:
    result = ranked(["x", "y", "z"], np.array([0.25, 0.5, 0.2499999999]), 0.25, None)
    assert [(c["text"], c["score"]) for c in result] == [("y", 0.5), ("x", 0.25), ("z", 0.25)]


def test_regions_must_lie_inside_the_image() -> None:
    check_regions(((0, 0, 100, 50), (10, 10, 20, 20)), 100, 50)
    for index, region in enumerate(((0, 0, 101, 50), (-1, 0, 10, 10), (0, 0, 10, 51))):
        with pytest.raises(APIError) as caught:
            check_regions(((0, 0, 5, 5), region), 100, 50)
        assert caught.value.status == 400 and caught.value.param == "regions[1]", index
