"""Turn chat messages into Qwen2-VL's token ids, as the Hugging Face processor does.

Chat template -> text -> tokens (special tokens parsed as special) -> each <|image_pad|> repeated once
per merged image token (t*h*w / merge_size**2 for the image's grid). Counting tokens needs only the
image sizes, so it never preprocesses pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from npu_worker.backend import InvalidRequestError, Message
from npu_worker.chat_template import ChatTemplate
from npu_worker.cpu.qwen2vl_image import ImageProcessorConfig, grid_thw
from npu_worker.images import as_rgb_array


@dataclass(frozen=True)
class PromptTokens:
    input_ids: np.ndarray  # int64[S], image pads expanded
    image_grids: np.ndarray  # int64[images, 3], in prompt order
    images: tuple[np.ndarray, ...]  # the messages' images as RGB uint8, in prompt order


class PromptBuilder:
    def __init__(
        self,
        template: ChatTemplate,
        tokenizer: Tokenizer,
        image_config: ImageProcessorConfig,
        image_token_id: int,
    ) -> None:
        self.template = template
        self.tokenizer = tokenizer
        self.image_config = image_config
        self.image_token_id = image_token_id

    def build(self, messages: Sequence[Message]) -> PromptTokens:
        text = self.template.render(messages)
        ids = np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        try:
            images = tuple(as_rgb_array(image) for message in messages for image in message.images)
        except ValueError as exc:
            raise InvalidRequestError(f"an image cannot be used: {exc}", param="messages") from exc
        grids = np.asarray(
            [grid_thw(image.shape[0], image.shape[1], self.image_config) for image in images], dtype=np.int64
        ).reshape(-1, 3)
        slots = ids == self.image_token_id
        if int(slots.sum()) != len(images):
            raise InvalidRequestError(
                f"the prompt has {int(slots.sum())} image placeholders for {len(images)} images; "
                "message text must not contain the model's image tokens",
                param="messages",
            )
        repeats = np.ones(ids.size, dtype=np.int64)
        repeats[slots] = grids.prod(axis=1) // self.image_config.merge_size**2
        return PromptTokens(np.repeat(ids, repeats), grids, images)
