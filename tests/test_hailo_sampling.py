"""OpenAI sampling settings as VLM.generate() keyword arguments: mapped where the meaning is the same,
refused (naming the parameter) where the device cannot do what OpenAI defines."""

from __future__ import annotations

import pytest

from npu_worker.backend import InvalidRequestError, SamplingParams
from npu_worker.hailo.sampling import check_supported, generate_kwargs


def test_temperature_zero_is_greedy_without_a_temperature_for_the_device_to_divide_by() -> None:
    kwargs = generate_kwargs(SamplingParams(temperature=0, top_p=0.5, top_k=7), 1000, 16)
    assert kwargs == {"max_generated_tokens": 16, "frequency_penalty": 1.0, "do_sample": False}


def test_sampling_passes_temperature_and_top_p_and_always_a_top_k() -> None:
    kwargs = generate_kwargs(SamplingParams(temperature=0.7, top_p=0.9), 1000, 32)
    assert kwargs == {
        "max_generated_tokens": 32,
        "frequency_penalty": 1.0,  # the device's multiplicative penalty, off
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 1000,  # no top-k asked: the configured wide cut (the device's own default is 1)
    }
    assert generate_kwargs(SamplingParams(temperature=1.0, top_k=5), 1000, 8)["top_k"] == 5


def test_seeds_fit_the_devices_uint32_and_never_ask_for_a_random_one() -> None:
    assert generate_kwargs(SamplingParams(seed=42), 1000, 1)["seed"] == 42
    assert generate_kwargs(SamplingParams(seed=2**32 + 5), 1000, 1)["seed"] == 5
    assert generate_kwargs(SamplingParams(seed=-1), 1000, 1)["seed"] == 2**32 - 2
    assert "seed" not in generate_kwargs(SamplingParams(), 1000, 1)


@pytest.mark.parametrize("name", ["frequency_penalty", "presence_penalty"])
@pytest.mark.parametrize("value", [0.5, -1.0])
def test_openai_penalties_are_refused_naming_the_parameter(name: str, value: float) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_supported(SamplingParams(**{name: value}))
    assert raised.value.param == name
    assert "multiplicative" in raised.value.message


def test_min_tokens_is_refused_and_zero_values_pass() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_supported(SamplingParams(min_tokens=3))
    assert raised.value.param == "min_tokens"
    check_supported(SamplingParams(frequency_penalty=0.0, presence_penalty=0.0, min_tokens=0))


def test_the_repetition_penalty_goes_to_the_devices_multiplicative_one() -> None:
    """llama.cpp's repeat_penalty is what the device's frequency_penalty is (over the whole context)."""
    assert generate_kwargs(SamplingParams(repeat_penalty=1.05), 1000, 8)["frequency_penalty"] == 1.05
    assert (
        generate_kwargs(SamplingParams(repeat_penalty=1.05, repeat_last_n=-1), 1000, 8)["frequency_penalty"]
        == 1.05
    )
    assert (
        generate_kwargs(SamplingParams(repeat_penalty=1.05, repeat_last_n=0), 1000, 8)["frequency_penalty"]
        == 1.0
    )
    with pytest.raises(InvalidRequestError) as raised:
        check_supported(SamplingParams(repeat_penalty=0.0))
    assert raised.value.param == "repeat_penalty"
