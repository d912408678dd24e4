"""The wire protocol between hailo-vision's processes: every message, defined once.

Each kind of message is one frozen dataclass below, shared by sender and receiver:
`npu_worker.codec` turns it into ZeroMQ frames (a msgpack header, a raw frame per numpy array) and
back into the same class, so a field that is missing, misspelt or of another protocol version fails
loudly as a ProtocolError, never as a silent default. Every frame carries its sender's epoch: a
worker draws a new one at each start, so frames from a dead worker are recognised and dropped.

Sockets (ipc:// in a private runtime directory):
- worker.sock: the API binds a ROUTER, the NPU worker connects a DEALER whose identity is its epoch.
  API -> worker: Generate, Embed, Abort, Ping, StatsRequest, Load, Release, Limits.
  worker -> API: Heartbeat, Error (a request refused on arrival), Pong, Stats.
- results.sock: the API binds a PULL, the worker's compute thread connects a PUSH and sends what it
  computes straight from there: Token*, Final, Embeddings, Error.
- control.sock: the supervisor binds a ROUTER, each child connects a DEALER and sends Status.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from npu_worker.backend import (
    FinishReason,
    ImagePart,
    Message,
    ModelInfo,
    Placement,
    ReleaseScope,
    SamplingParams,
    TextPart,
    VideoPart,
)
from npu_worker.states import ApiState, NpuOwner, Role, Rung, WorkerState
from npu_worker.wire_fields import field_names, model_from_wire, model_to_wire, typed

PROTOCOL_VERSION = 4  # 4: Limits.cache_share (was text_cache_share) also bounds kept contexts


class Kind(StrEnum):
    # API -> worker
    GENERATE = "generate"
    EMBED = "embed"
    ABORT = "abort"
    PING = "ping"
    STATS_REQUEST = "stats_request"
    LOAD = "load"
    RELEASE = "release"
    LIMITS = "limits"
    # worker -> API
    HEARTBEAT = "heartbeat"
    TOKEN = "token"  # noqa: S105 - a generated token, not a secret
    FINAL = "final"
    EMBEDDINGS = "embeddings"
    ERROR = "error"
    PONG = "pong"
    STATS = "stats"
    # child -> supervisor
    STATUS = "status"


# Each error code maps to exactly one HTTP status; the API answers with it.
ERROR_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "context_length_exceeded": 400,
    "structured_output_failed": 422,
    "model_not_found": 404,
    "queue_full": 503,
    "worker_unavailable": 503,
    "model_loading": 503,
    "npu_busy": 503,
    "npu_released": 503,
    "degraded": 503,
    "model_load_failed": 503,
    "device_failed": 503,
    "timeout": 504,
    "backend_error": 500,
    "internal_error": 500,
    "protocol_error": 500,
}


class ProtocolError(ValueError):
    """A message that is not valid under this protocol version."""


def new_epoch() -> str:
    return secrets.token_hex(8)


def worker_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / 'worker.sock'}"


def results_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / 'results.sock'}"


def control_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / 'control.sock'}"


# --- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A message: its fields travel in the header; `arrays` (if any) as raw frames after it."""

    KIND: ClassVar[Kind]

    def to_wire(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        return {name: getattr(self, name) for name in field_names(type(self))}, []

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Wire:
        return cls(**{name: typed(cls, name, value) for name, value in fields.items()})


@dataclass(frozen=True)
class Generate(Wire):
    KIND = Kind.GENERATE
    rid: str
    model: str
    messages: tuple[Message, ...]
    params: SamplingParams
    timeout_s: float
    stream: bool  # False: the text comes whole in Final, no Token frames

    def to_wire(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        arrays: list[np.ndarray] = []
        turns: list[dict[str, Any]] = []
        for message in self.messages:
            parts: list[list[Any]] = []
            for part in message.parts:
                if isinstance(part, ImagePart):
                    parts.append(["image", len(arrays)])
                    arrays.append(part.pixels)
                elif isinstance(part, VideoPart):
                    parts.append(["video", len(arrays), len(part.frames)])
                    arrays.extend(part.frames)
                else:
                    parts.append(["text", part.text])
            turns.append({"role": message.role, "parts": parts})
        params = {**dataclasses.asdict(self.params), "stop": list(self.params.stop)}
        fields = {"rid": self.rid, "model": self.model, "messages": turns, "params": params}
        return {**fields, "timeout_s": self.timeout_s, "stream": self.stream}, arrays

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Generate:
        def part(wire: list[Any]) -> TextPart | ImagePart | VideoPart:
            if wire[0] == "text":
                return TextPart(wire[1])
            if wire[0] == "image":
                return ImagePart(arrays[wire[1]])
            if wire[0] == "video":
                return VideoPart(tuple(arrays[wire[1] : wire[1] + wire[2]]))
            raise ProtocolError(f"unknown message part {wire[0]!r}")

        messages = tuple(Message(m["role"], tuple(part(p) for p in m["parts"])) for m in fields["messages"])
        params = fields["params"]
        return cls(
            rid=fields["rid"],
            model=fields["model"],
            messages=messages,
            params=SamplingParams(**{**params, "stop": tuple(params["stop"])}),
            timeout_s=float(fields["timeout_s"]),
            stream=bool(fields["stream"]),
        )


@dataclass(frozen=True)
class Embed(Wire):
    """CLIP work: `images` (uint8 HxWx3) and `texts`; `templates` () = texts as they are."""

    KIND = Kind.EMBED
    rid: str
    model: str
    texts: tuple[str, ...]
    templates: tuple[str, ...]
    images: tuple[np.ndarray, ...] = ()

    def to_wire(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        fields = {"rid": self.rid, "model": self.model, "texts": list(self.texts)}
        return {**fields, "templates": list(self.templates)}, list(self.images)

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Embed:
        texts, templates = tuple(map(str, fields["texts"])), tuple(map(str, fields["templates"]))
        return cls(fields["rid"], fields["model"], texts, templates, tuple(arrays))


@dataclass(frozen=True)
class Abort(Wire):
    """The request is dropped from the queue, or its generation stops at the next token."""

    KIND = Kind.ABORT
    rid: str


@dataclass(frozen=True)
class Ping(Wire):
    KIND = Kind.PING
    seq: int


@dataclass(frozen=True)
class StatsRequest(Wire):
    KIND = Kind.STATS_REQUEST
    seq: int


@dataclass(frozen=True)
class Load(Wire):
    """Take the device and load the models now (the scheduler gave hailo-vision its turn)."""

    KIND = Kind.LOAD
    reason: str


@dataclass(frozen=True)
class Release(Wire):
    """Give the device back (idle, or hailo-ollama's turn); CPU parts and caches stay loaded."""

    KIND = Kind.RELEASE
    scope: ReleaseScope
    reason: str


@dataclass(frozen=True)
class Limits(Wire):
    """What the degradation ladder allows the worker now: CLIP images per batch, a pause between two
    generations, and the share of its caches it may keep (the CLIP text cache, and the contexts kept
    for follow-up turns)."""

    KIND = Kind.LIMITS
    max_batch: int
    generation_pause_s: float
    cache_share: float


@dataclass(frozen=True)
class Heartbeat(Wire):
    """The worker's state, every worker.heartbeat_interval_s and on every change."""

    KIND = Kind.HEARTBEAT
    state: WorkerState
    detail: str
    backend: str
    models: tuple[ModelInfo, ...]
    queued: int
    in_flight: int
    pid: int
    model_load_seconds: float
    details: dict[str, Any]
    clip_placement: Placement
    retry_in_s: float | None  # npu_busy: when the next load attempt is due
    chip_temperature_c: float | None  # the Hailo chip, where the backend can read it

    def to_wire(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        fields, _ = super().to_wire()
        fields["models"] = [model_to_wire(m) for m in self.models]
        return fields, []

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Heartbeat:
        models = tuple(model_from_wire(m) for m in fields.pop("models"))
        return cls(**{name: typed(cls, name, value) for name, value in fields.items()}, models=models)


@dataclass(frozen=True)
class Token(Wire):
    KIND = Kind.TOKEN
    rid: str
    text: str
    id: int


@dataclass(frozen=True)
class Final(Wire):
    """A generation's end: `text` is the whole text when it was not streamed, else ""."""

    KIND = Kind.FINAL
    rid: str
    text: str
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    queue_wait_s: float
    ttft_s: float
    compute_s: float
    cached_tokens: int = 0  # prompt tokens the conversation's kept context held (not prefilled)


@dataclass(frozen=True)
class Embeddings(Wire):
    """CLIP results: image embeddings (len(images), D) and text embeddings (len(texts), D),
    L2-normalised float32."""

    KIND = Kind.EMBEDDINGS
    rid: str
    model: str
    logit_scale: float
    text_tokens: int
    cache_hits: int
    batch_images: int
    queue_wait_s: float
    compute_s: float
    image_embeddings: np.ndarray
    text_embeddings: np.ndarray

    def to_wire(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        names = field_names(type(self))[:-2]
        return {n: getattr(self, n) for n in names}, [self.image_embeddings, self.text_embeddings]

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Embeddings:
        if len(arrays) != 2:
            raise ProtocolError(f"embeddings carry 2 arrays, got {len(arrays)}")
        return cls(**fields, image_embeddings=arrays[0], text_embeddings=arrays[1])


@dataclass(frozen=True)
class Error(Wire):
    KIND = Kind.ERROR
    rid: str
    code: str
    message: str
    param: str | None = None


@dataclass(frozen=True)
class Pong(Wire):
    KIND = Kind.PONG
    seq: int


@dataclass(frozen=True)
class Stats(Wire):
    """The worker's counters, read by the API's /metrics at scrape time."""

    KIND = Kind.STATS
    seq: int
    model_load_seconds: float
    tokens_generated: int
    requests_finished: int
    requests_failed: int
    requests_cancelled: int
    queued: int
    text_cache_hits: int
    text_cache_misses: int
    text_cache_entries: int
    text_cache_bytes: int
    clip_encoder_runs: int
    clip_images_encoded: int


@dataclass(frozen=True)
class Status(Wire):
    """A child's report to the supervisor: the API's state or the worker's, by `role`. The API adds
    what it alone knows: whether it sees the worker ready (what /health/ready answers), and the
    scheduler's view of the NPU."""

    KIND = Kind.STATUS
    role: Role
    pid: int
    state: ApiState | WorkerState
    detail: str
    in_flight: int
    queued: int
    model: str
    worker_ready: bool = False
    npu_owner: NpuOwner = NpuOwner.UNKNOWN
    npu_reason: str = ""
    rung: Rung = Rung.NORMAL
    rung_reason: str = ""

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: Sequence[np.ndarray]) -> Status:
        role = Role(fields["role"])
        state = ApiState(fields["state"]) if role == Role.API else WorkerState(fields["state"])
        rest = {name: typed(cls, name, value) for name, value in fields.items() if name != "state"}
        return cls(**{**rest, "state": state})


MESSAGES: dict[Kind, type[Wire]] = {
    cls.KIND: cls
    for cls in (
        Generate, Embed, Abort, Ping, StatsRequest, Load, Release, Limits, Heartbeat, Token, Final,
        Embeddings, Error, Pong, Stats, Status,
    )
}  # fmt: skip
