"""Warm a freshly loaded vision-language model: one token about a small image, so the first real
request does not pay for lazy set-up (session allocations, device buffers). Shared by every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from npu_worker.backend import GenerationEvent, ImagePart, Message, SamplingParams, TextPart

Generate = Callable[[Sequence[Message], SamplingParams], Iterator[GenerationEvent]]


def warm_up(generate: Generate) -> None:
    image = np.full((64, 64, 3), 255, dtype=np.uint8)
    for _ in generate(
        [Message("user", (ImagePart(image), TextPart("hi")))], SamplingParams(max_tokens=1, temperature=0)
    ):
        pass
