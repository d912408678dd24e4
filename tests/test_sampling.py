"""Sampling follows OpenAI's semantics and is reproducible per seed."""

import numpy as np
import pytest

from npu_worker.backend import InvalidRequestError, SamplingParams
from npu_worker.sampling import NUCLEUS_POOL, TokenSampler


def draws(params: SamplingParams, logits: np.ndarray, n: int) -> list[int]:
    sampler = TokenSampler(params)
    return [sampler.choose(logits) for _ in range(n)]


def probs_logits(probs: list[float]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float32))


def test_temperature_zero_is_greedy_whatever_the_seed():
    logits = np.array([0.1, 2.0, 1.9, -1.0], dtype=np.float32)
    assert draws(SamplingParams(temperature=0, seed=1), logits, 5) == [1] * 5
    assert draws(SamplingParams(temperature=0, seed=None), logits, 5) == [1] * 5


def test_same_seed_same_tokens_and_different_seeds_differ():
    logits = np.zeros(50, dtype=np.float32)
    first = draws(SamplingParams(temperature=1.0, seed=7), logits, 30)
    assert first == draws(SamplingParams(temperature=1.0, seed=7), logits, 30)
    assert first != draws(SamplingParams(temperature=1.0, seed=8), logits, 30)


def test_unseeded_requests_are_random():
    logits = np.zeros(1000, dtype=np.float32)
    assert draws(SamplingParams(seed=None), logits, 10) != draws(SamplingParams(seed=None), logits, 10)


def test_sampled_frequencies_follow_the_softmax():
    probs = [0.6, 0.3, 0.1]
    tokens = draws(SamplingParams(temperature=1.0, seed=3), probs_logits(probs), 6000)
    freq = np.bincount(tokens, minlength=3) / len(tokens)
    assert np.allclose(freq, probs, atol=0.03)


def test_low_temperature_sharpens_the_distribution():
    tokens = draws(SamplingParams(temperature=0.2, seed=3), probs_logits([0.6, 0.3, 0.1]), 2000)
    # p ∝ p_i ** 5: 0.6**5 / (0.6**5 + 0.3**5 + 0.1**5) ≈ 0.97
    assert 0.94 < tokens.count(0) / len(tokens) < 0.995


def test_top_k_keeps_only_the_k_most_likely_tokens():
    logits = probs_logits([0.05, 0.4, 0.05, 0.3, 0.2])
    assert set(draws(SamplingParams(top_k=2, seed=0), logits, 500)) == {1, 3}
    assert set(draws(SamplingParams(top_k=1, seed=0), logits, 50)) == {1}


@pytest.mark.parametrize(
    ("top_p", "allowed"), [(0.5, {0}), (0.7, {0, 1}), (0.9, {0, 1, 2}), (0.0, {0}), (1.0, {0, 1, 2, 3})]
)
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, allowed):
    logits = probs_logits([0.5, 0.3, 0.15, 0.05])
    assert set(draws(SamplingParams(top_p=top_p, seed=1), logits, 2000)) == allowed


def test_top_p_on_a_large_vocabulary_beyond_the_search_pool():
    vocab = 4 * NUCLEUS_POOL
    rng = np.random.default_rng(0)
    flat = rng.normal(0, 0.01, vocab).astype(np.float32)  # the nucleus needs ~99 % of all tokens
    tokens = draws(SamplingParams(top_p=0.99, seed=2), flat, 3000)
    assert max(np.argsort(-flat).tolist().index(t) for t in tokens) >= NUCLEUS_POOL
    peaked = flat.copy()
    peaked[[10, 500, 900]] = 10.0  # three tokens hold almost all the mass
    assert set(draws(SamplingParams(top_p=0.9, seed=2), peaked, 500)) == {10, 500, 900}


def test_top_k_and_top_p_combine():
    logits = probs_logits([0.4, 0.3, 0.2, 0.1])
    # top_k=3 renormalises to 0.44/0.33/0.22; top_p=0.7 then keeps the first two
    assert set(draws(SamplingParams(top_k=3, top_p=0.7, seed=4), logits, 1000)) == {0, 1}


def test_presence_penalty_subtracts_once_per_seen_token():
    logits = np.array([5.0, 4.5, 0.0], dtype=np.float32)
    params = SamplingParams(temperature=0, presence_penalty=1.0)
    # both seen once: 4.0 vs 3.5, and presence does not grow with repeats
    assert draws(params, logits, 4) == [0, 1, 0, 0]


def test_frequency_penalty_grows_with_the_count():
    logits = np.array([5.0, 3.9], dtype=np.float32)
    params = SamplingParams(temperature=0, frequency_penalty=0.6)
    # token 0: 5.0, 4.4, 3.8 (< 3.9) -> token 1 after two picks of token 0
    assert draws(params, logits, 3) == [0, 0, 1]


def test_negative_penalties_encourage_repetition():
    logits = np.array([5.0, 5.2], dtype=np.float32)
    sampler = TokenSampler(SamplingParams(temperature=0, presence_penalty=-1.0))
    sampler.counts[0] = 1
    assert sampler.choose(logits) == 0


def test_penalties_leave_the_callers_logits_untouched():
    logits = np.array([5.0, 4.5], dtype=np.float32)
    sampler = TokenSampler(SamplingParams(temperature=0, frequency_penalty=2.0))
    sampler.choose(logits)
    sampler.choose(logits)
    assert logits.tolist() == [5.0, 4.5]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (SamplingParams(temperature=-0.1), "temperature"),
        (SamplingParams(top_p=1.5), "top_p"),
        (SamplingParams(top_k=-1), "top_k"),
        (SamplingParams(repeat_penalty=0.0), "repeat_penalty"),
        (SamplingParams(repeat_last_n=-2), "repeat_last_n"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_parameter(params, param):
    with pytest.raises(InvalidRequestError) as err:
        TokenSampler(params)
    assert err.value.param == param


def test_the_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_the_context() -> None:
    """llama.cpp's: token 0 is in the prompt, so 3.0 / 2 = 1.5 loses to token 1's 2.0; token 2's -1.0
    becomes -2.0 once generated."""
    logits = np.array([3.0, 2.0, -1.0, -1.5])
    sampler = TokenSampler(SamplingParams(temperature=0, repeat_penalty=2.0), context=[0])
    assert sampler.choose(logits) == 1
    sampler = TokenSampler(SamplingParams(temperature=0, repeat_penalty=2.0), context=[0, 1])
    assert sampler.choose(np.array([3.0, 2.0, -1.0, -1.5])) == 0  # 1.5 > 1.0 > -1.0
    sampler = TokenSampler(SamplingParams(temperature=0, repeat_penalty=2.0), context=[0, 1, 2])
    assert sampler.choose(np.array([0.4, 0.4, -1.0, -1.5])) == 0  # 0.2, 0.2, -2.0, -1.5
    assert sampler._penalised(np.array([0.4, 0.4, -1.0, -1.5]))[3] == -1.5  # untouched: never seen


def test_the_repetition_penalty_looks_back_repeat_last_n_tokens_only() -> None:
    logits = np.array([3.0, 2.0, 0.0])  # token 0 wins unless penalised (3 / 2 = 1.5 < 2)

    def first(repeat_last_n: int, context: list[int]) -> int:
        params = SamplingParams(temperature=0, repeat_penalty=2.0, repeat_last_n=repeat_last_n)
        return TokenSampler(params, context=context).choose(logits)

    assert first(2, [0, 2, 2]) == 0  # token 0 is 3 tokens back: out of the window
    assert first(3, [0, 2, 2]) == 1
    assert first(64, [0] + [2] * 64) == 0 and first(-1, [0] + [2] * 64) == 1  # -1: the whole context
    assert first(0, [0]) == 0  # 0: off


def test_min_tokens_suppresses_the_end_tokens_until_reached() -> None:
    logits = np.array([0.0, 5.0, 1.0])  # token 1 (the end token) always wins unless suppressed
    sampler = TokenSampler(SamplingParams(temperature=0, min_tokens=2), end_ids=[1])
    assert [sampler.choose(logits) for _ in range(3)] == [2, 2, 1]
