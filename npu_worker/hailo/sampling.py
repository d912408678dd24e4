"""OpenAI sampling settings as the keyword arguments of VLM.generate(), where they mean the same thing.

The device's sampler (HailoRT's LLMPostProcess) differs from OpenAI's in ways a caller cannot see:
- it divides the scores by `temperature`, and refuses 0: temperature 0 (greedy) is sent as
  do_sample=False with no temperature, top_p or top_k;
- it needs a top-k >= 1 and defaults to 1 (greedy) for the VLM: a request without top-k is sent the
  configured `default_top_k`, a wide cut under which top-p does the real work;
- its `frequency_penalty` is a multiplicative repetition penalty over every token in the context
  (1.0 = off), not OpenAI's additive penalties on generated tokens. No mapping keeps OpenAI's meaning,
  so non-zero frequency_penalty / presence_penalty are refused (400 naming the parameter); it is
  llama.cpp's repeat_penalty (Ollama's, vLLM's repetition_penalty), which is sent as it is - over the
  whole context, whatever repeat_last_n says (the device has no window);
- it cannot hold back the end of sequence: min_tokens > 0 is refused.
"""

from __future__ import annotations

from typing import Any

from npu_worker.backend import InvalidRequestError, SamplingParams

SEED_MASK = 0xFFFFFFFF
RANDOM_SEED = 0xFFFFFFFF  # HAILO_RANDOM_SEED: the device picks a seed from its clock


def check_supported(params: SamplingParams) -> None:
    """Refuse what the device cannot do as OpenAI defines it, naming the parameter."""
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(params, name) != 0:
            raise InvalidRequestError(
                f"{name} is not supported by the Hailo backend: the device only has a multiplicative "
                "repetition penalty, which is not OpenAI's additive penalty; send 0 or leave it out",
                param=name,
            )
    if not params.repeat_penalty > 0:
        raise InvalidRequestError(
            f"repeat_penalty must be > 0, got {params.repeat_penalty}", "repeat_penalty"
        )
    if getattr(params, "min_tokens", 0) > 0:
        raise InvalidRequestError(
            "min_tokens is not supported by the Hailo backend: the device cannot suppress the end of "
            "sequence; send 0 or leave it out",
            param="min_tokens",
        )


def generate_kwargs(params: SamplingParams, default_top_k: int, max_generated_tokens: int) -> dict[str, Any]:
    """Keyword arguments for VLM.generate(); call check_supported() first."""
    kwargs: dict[str, Any] = {
        "max_generated_tokens": max_generated_tokens,
        "frequency_penalty": params.effective_repeat_penalty,
    }
    if params.temperature == 0:
        kwargs["do_sample"] = False
    else:
        kwargs.update(
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else default_top_k,
        )
    if params.seed is not None:
        seed = params.seed & SEED_MASK
        kwargs["seed"] = seed if seed != RANDOM_SEED else seed - 1  # never the "random" sentinel
    return kwargs
