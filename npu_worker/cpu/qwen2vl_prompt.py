"""Turn chat messages into Qwen2-VL's token ids, as the Hugging Face processor does.

Chat template -> text -> tokens (special tokens parsed as special) -> each <|image_pad|> (<|video_pad|>)
repeated once per merged image (clip) token (t*h*w / merge_size**2 for its grid). Counting tokens needs
only the image and frame sizes, so it never preprocesses pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer

from npu_worker.backend import InvalidRequestError, Message
from npu_worker.chat_template import ChatTemplate
from npu_worker.cpu.qwen2vl_image import ImageProcessorConfig, grid_thw, video_grid_thw
from npu_worker.images import as_rgb_array


@dataclass(frozen=True)
class PromptTokens:
    input_ids: np.ndarray  # int64[S], image and video pads expanded
    image_grids: np.ndarray  # int64[images, 3], in prompt order
    images: tuple[np.ndarray, ...]  # the messages' images as RGB uint8, in prompt order
    video_grids: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))  # int64[clips, 3]
    clips: tuple[tuple[np.ndarray, ...], ...] = ()  # the messages' clips' frames as RGB uint8


class PromptBuilder:
    def __init__(
        self,
        template: ChatTemplate,
        tokenizer: Tokenizer,
        image_config: ImageProcessorConfig,
        image_token_id: int,
        video_token_id: int,
    ) -> None:
        self.template = template
        self.tokenizer = tokenizer
        self.image_config = image_config
        self.image_token_id = image_token_id
        self.video_token_id = video_token_id

    def build(self, messages: Sequence[Message]) -> PromptTokens:
        text = self.template.render(messages)
        ids = np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        try:
            images = tuple(as_rgb_array(image) for message in messages for image in message.images)
            clips = tuple(
                tuple(as_rgb_array(frame) for frame in clip)
                for message in messages
                for clip in message.videos
            )
        except ValueError as exc:
            raise InvalidRequestError(f"an image cannot be used: {exc}", param="messages") from exc
        if any(not clip for clip in clips):
            raise InvalidRequestError("a clip has no frames", param="messages")
        config = self.image_config
        grids = np.asarray([grid_thw(i.shape[0], i.shape[1], config) for i in images], np.int64).reshape(
            -1, 3
        )
        clip_grids = np.asarray(
            [video_grid_thw(len(c), c[0].shape[0], c[0].shape[1], config) for c in clips], np.int64
        ).reshape(-1, 3)
        repeats = np.ones(ids.size, dtype=np.int64)
        for token, what, found in (
            (self.image_token_id, "image", grids),
            (self.video_token_id, "clip", clip_grids),
        ):
            slots = ids == token
            if int(slots.sum()) != len(found):
                raise InvalidRequestError(
                    f"the prompt has {int(slots.sum())} {what} placeholders for {len(found)} {what}s; "
                    "message text must not contain the model's image or video tokens",
                    param="messages",
                )
            repeats[slots] = found.prod(axis=1) // config.merge_size**2
        return PromptTokens(np.repeat(ids, repeats), grids, images, clip_grids, clips)
