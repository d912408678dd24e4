"""The one interface every inference backend implements (ONNX Runtime on the CPU, HailoRT on the NPU).

Nothing above this module knows which backend runs: the worker talks to a `Backend`, hands it chat
messages whose images are already decoded to RGB uint8 arrays, and reads back tokens, a finish
reason with real token counts, or L2-normalised embeddings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Role = Literal["system", "user", "assistant"]
ModelKind = Literal["vlm", "clip", "llm"]  # llm: hailo-ollama's text models, reached through the door
OLLAMA_BACKEND = "hailo-ollama"  # ModelInfo.backend of a model hailo-ollama serves
FinishReason = Literal["stop", "length", "cancelled"]


class Placement(StrEnum):
    """Where a model runs now."""

    NPU = "npu"
    CPU = "cpu"
    NONE = "none"


class ReleaseScope(StrEnum):
    """What `Backend.release` gives back."""

    VLM = "vlm"  # the VLM only: CLIP stays on the device (hailo-ollama shares the VDevice group)
    DEVICE = "device"  # every model on the device, then the device itself


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image as an RGB uint8 array of shape (height, width, 3)."""

    pixels: np.ndarray


@dataclass(frozen=True)
class VideoPart:
    """A clip: its frames in order, each an RGB uint8 array (height, width, 3), already sampled."""

    frames: tuple[np.ndarray, ...]


Part = TextPart | ImagePart | VideoPart


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def text(cls, role: Role, text: str) -> Message:
        return cls(role, (TextPart(text),))

    @property
    def images(self) -> list[np.ndarray]:
        return [p.pixels for p in self.parts if isinstance(p, ImagePart)]

    @property
    def videos(self) -> list[tuple[np.ndarray, ...]]:
        return [p.frames for p in self.parts if isinstance(p, VideoPart)]


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings with OpenAI semantics (temperature 0 means greedy; penalties are additive)."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # llama.cpp's repetition penalty (Ollama's repeat_penalty, vLLM's repetition_penalty): the logit of
    # each token among the last `repeat_last_n` of the prompt and answer is divided by it (multiplied
    # when negative). 1.0 = off; repeat_last_n -1 = the whole context, 0 = off.
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64

    @property
    def effective_repeat_penalty(self) -> float:
        """The repetition penalty to apply (1.0 when repeat_last_n turns it off)."""
        return self.repeat_penalty if self.repeat_last_n != 0 else 1.0

    stop: tuple[str, ...] = ()
    min_tokens: int = 0  # end-of-sequence suppressed until this many tokens (vLLM's extension)
    json_schema: str = ""  # structured output: the JSON Schema (as JSON text) the answer must meet


@dataclass(frozen=True)
class Token:
    """One generated piece of text. `text` may be "" while a stop string is being held back."""

    text: str
    token_id: int


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens taken from the kept context of the conversation, not prefilled


GenerationEvent = Token | Finish


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is and can do; the API's /v1/models and /health are built from it."""

    id: str
    kind: ModelKind
    backend: str
    context_length: int | None = None  # VLM: tokens
    embedding_dim: int | None = None  # CLIP: dimension of image and text embeddings
    image_size: tuple[int, int] | None = None  # CLIP: (height, width) fed to the image encoder
    min_pixels: int | None = None  # VLM: the image processor's pixel budget
    max_pixels: int | None = None
    max_images: int | None = None  # per request, where the model has a limit
    capabilities: frozenset[str] = field(default_factory=frozenset)

    @property
    def served_by(self) -> str:
        return OLLAMA_BACKEND if self.backend == OLLAMA_BACKEND else "hailo-vision"


class BackendError(Exception):
    """An error a backend reports to its caller; `code` is stable and maps to one API status."""

    code = "backend_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelLoadError(BackendError):
    """A model's files are missing or malformed; raised at load, naming the file and the fault."""

    code = "model_load_failed"


class UnknownModelError(BackendError):
    code = "model_not_found"


class InvalidRequestError(BackendError):
    """The request cannot be served as asked (e.g. no image where one is required)."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextLengthError(InvalidRequestError):
    """The prompt (plus room for at least one token) does not fit the model's context window."""

    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(
            f"the prompt is {prompt_tokens} tokens (images included) but the model's context window is "
            f"{context_length} tokens; shorten the text or send fewer or smaller images",
            param="messages",
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class DeviceBusyError(BackendError):
    """The accelerator is held by another process (HailoRT error 74); retry later."""

    code = "npu_busy"


class DeviceReleasedError(BackendError):
    """The work needs the device, which hailo-vision has given back for now; the scheduler takes it
    again when it is hailo-vision's turn."""

    code = "npu_released"


class DeviceFailedError(BackendError):
    """The accelerator was lost or failed fatally; the worker must exit and be restarted."""

    code = "device_failed"


@runtime_checkable
class Backend(Protocol):
    """A set of loaded models (at most one VLM and one CLIP) behind one device or runtime."""

    name: str
    uses_device: bool  # True when models live on the NPU, which must be taken and given back in turns

    def prepare(self) -> None:
        """Load what needs no device (tokenizers, CPU encoders): once, at start. Raise ModelLoadError
        naming the file at fault."""

    def load(self, vlm: bool = True) -> None:
        """Take the device (if any) and load every configured model not loaded yet - without the VLM
        when `vlm` is False (CLIP beside hailo-ollama in a shared VDevice group); prepare() first, if it
        was not called. Raise DeviceBusyError while another process holds the device, ModelLoadError
        naming a bad file."""

    def release(self, scope: ReleaseScope) -> None:
        """Give back what `scope` says, and drop any context kept for a follow-up turn; what prepare()
        loaded stays, and load() may follow."""

    def unload(self) -> None:
        """Release everything (the process stops)."""

    def limit_kept_contexts(self, share: float) -> None:
        """Keep at most `share` (0..1) of inference.context_reuse_* for follow-up turns, from now on
        and across loads (the degradation ladder's word under memory pressure); what is over goes now."""

    def describe(self) -> list[ModelInfo]:
        """The served models, whether or not on the device right now (the VLM once it has been
        loaded gives its full facts; before, its id and kind)."""

    def clip_placement(self) -> Placement:
        """Where CLIP image embeddings are computed now."""

    def chip_temperature(self) -> float | None:
        """The accelerator's temperature in C, or None (no accelerator, or unreadable)."""

    def details(self) -> dict[str, Any]:
        """Runtime facts for /health and logs (versions, detected features); JSON-serialisable."""

    def generate(
        self, model: str, messages: Sequence[Message], params: SamplingParams
    ) -> Iterator[GenerationEvent]:
        """Stream `Token`s, then exactly one `Finish`.

        Validation (unknown model, context overflow) happens before the first event is yielded.
        Closing the iterator between two tokens cancels the generation. A request that continues the
        last conversations exactly (same messages and media, plus new turns) may reuse their context
        and prefill only the new part (`Finish.cached_tokens`); any other starts clean.
        """

    def count_tokens(self, model: str, messages: Sequence[Message]) -> int:
        """Prompt tokens the messages take, image tokens and chat template included."""

    def embed_images(self, model: str, images: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised float32 embeddings, shape (len(images), dim), in one encoder run."""

    def embed_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, shape (len(texts), dim)."""

    def count_text_tokens(self, model: str, texts: Sequence[str]) -> int:
        """Tokens the CLIP text encoder sees for `texts` (for usage figures)."""

    def logit_scale(self, model: str) -> float:
        """The CLIP model's learned logit scale (exp of the stored log value)."""
