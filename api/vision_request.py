"""The bodies of hailo-vision's own vision routes: /v1/caption (the seed's Florence-2-style captioning,
served by the VLM) and /v1/vision/analyze (one prompt over a batch of images, one answer per image)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, model_validator

from api.chat_request import MaxTokens, Temperature, TopP
from api.conversation import Conversation, ImageRef, Turn
from api.errors import APIError
from api.image_input import ImageInput, image_ref
from api.schema import Body, NonBlank, limits
from npu_worker.backend import SamplingParams
from npu_worker.config import InferenceConfig

# The captioning prompts, by `detail`. The demo VLM answers "Describe the image." with a caption
# ("a red circle", "a blue square and a green triangle"); Qwen2-VL-2B with a sentence or two.
CAPTION_PROMPTS = {"brief": "Describe the image.", "detailed": "Describe the image in detail."}


def _single(image: ImageRef, prompt: str) -> tuple[Turn, ...]:
    return (Turn("user", (image, prompt), image.param),)


class CaptionRequest(Body):
    """POST /v1/caption: a caption of one image."""

    image: ImageInput
    max_length: MaxTokens | None = Field(None, description="Tokens at most; default inference.max_tokens")
    min_length: Annotated[int, Field(ge=0, description="Tokens at least (CPU backend only)")] | None = None
    detail: Literal["brief", "detailed"] | None = Field(None, description="Which captioning prompt; brief")
    model: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CaptionRequest:
        if self.min_length and self.max_length and self.min_length > self.max_length:
            raise APIError(400, "'min_length' must not exceed 'max_length'", "invalid_request", "min_length")
        return self

    def to_conversation(self, defaults: InferenceConfig) -> Conversation:
        prompt = CAPTION_PROMPTS[self.detail or "brief"]
        params = SamplingParams(
            max_tokens=self.max_length or defaults.max_tokens,
            temperature=0.0,
            min_tokens=self.min_length or 0,
        )
        return Conversation(self.model, _single(image_ref(self.image, "image"), prompt), params)


class AnalyzeRequest(Body):
    """POST /v1/vision/analyze: `prompt` asked of each image on its own."""

    images: Annotated[list[ImageInput], Field(min_length=1, description="At most api.max_images_per_request")]
    prompt: NonBlank
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    return_individual_results: bool | None = Field(
        None, description="true: each result also carries its own timing, token counts and finish reason"
    )
    model: str | None = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> AnalyzeRequest:
        limit = limits(info).api.max_images_per_request
        if len(self.images) > limit:
            raise APIError(
                400,
                f"at most {limit} images per request (api.max_images_per_request), got {len(self.images)}",
                "invalid_request",
                "images",
            )
        return self

    def conversations(self, defaults: InferenceConfig) -> list[Conversation]:
        """One conversation per image: the prompt about that image alone."""
        params = SamplingParams(
            max_tokens=self.max_tokens or defaults.max_tokens,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
        )
        return [
            Conversation(self.model, _single(image_ref(image, f"images[{i}]"), self.prompt), params)
            for i, image in enumerate(self.images)
        ]
