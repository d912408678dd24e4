"""The wire protocol between hailo-vision's processes: the single source of truth.

Every message is one ZeroMQ multipart message: a msgpack header, then one raw frame per numpy array
(images, embeddings - never base64). The header always holds the protocol version `v`, the message
`kind` and the sender's `epoch`; a worker draws a new epoch at each start so that frames from a dead
worker can be recognised and dropped.

Sockets (ipc:// in a private runtime directory):
- worker.sock: the API binds a ROUTER, the NPU worker connects a DEALER whose identity is its epoch.
  API -> worker: GENERATE, EMBED, ABORT, PING, STATS_REQUEST.
  worker -> API: HEARTBEAT (state and models), ERROR (a request refused on arrival), PONG, STATS.
- results.sock: the API binds a PULL, the worker's compute thread connects a PUSH and sends what it
  computes straight from there: TOKEN*, FINAL, EMBEDDINGS, ERROR. No hop through another thread
  on the per-token path; the DEALER above stays the worker's connection (death detection).
- control.sock: the supervisor binds a ROUTER, each child connects a DEALER and sends STATUS.

Fields per kind (every request and its answers carry `rid`):
- GENERATE: model, messages (see messages_to_wire; images are the arrays), params
  (params_to_wire), timeout_s, stream. Answers: TOKEN (text, id) per token with text when stream is
  true, then FINAL (text - the whole text when stream is false, else "" - reason, prompt_tokens,
  completion_tokens, queue_wait_s, ttft_s, compute_s) - or one ERROR.
- EMBED: model, texts (list of str), templates (list of str; [] = texts as they are); the arrays are
  images (uint8 HxWx3). Answer: EMBEDDINGS (model, logit_scale, text_tokens, cache_hits,
  batch_images, queue_wait_s, compute_s) with two arrays: image embeddings (len(images), D) and
  text embeddings (len(texts), D), L2-normalised float32 - or one ERROR (code, message, param).
- ABORT: the request is dropped from the queue or its generation stops at the next token.
- HEARTBEAT: state, detail, backend, models, queued, in_flight, pid, model_load_seconds, details.
- STATUS (to the supervisor): role, pid, state, detail, in_flight, queued, model; from the API also
  worker_ready (its own view of the worker, which /health/ready answers from).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from npu_worker.backend import ImagePart, Message, ModelInfo, SamplingParams, TextPart

PROTOCOL_VERSION = 1


class Kind(StrEnum):
    # API -> worker
    GENERATE = "generate"
    EMBED = "embed"
    ABORT = "abort"
    PING = "ping"
    STATS_REQUEST = "stats_request"
    # worker -> API
    HEARTBEAT = "heartbeat"
    TOKEN = "token"
    FINAL = "final"
    EMBEDDINGS = "embeddings"
    ERROR = "error"
    PONG = "pong"
    STATS = "stats"
    # child -> supervisor
    STATUS = "status"


class WorkerState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    NPU_BUSY = "npu_busy"  # the device is held by another process; the worker retries loading
    FAILED = "failed"


# Each error code maps to exactly one HTTP status; the API answers with it.
ERROR_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "context_length_exceeded": 400,
    "model_not_found": 404,
    "queue_full": 503,
    "worker_unavailable": 503,
    "model_loading": 503,
    "npu_busy": 503,
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


@dataclass
class Envelope:
    """A decoded message: its kind, the sender's epoch, header fields and attached arrays."""

    kind: Kind
    epoch: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: list[np.ndarray] = field(default_factory=list)


def encode(
    kind: Kind, epoch: str, fields: dict[str, Any] | None = None, arrays: Sequence[np.ndarray] = ()
) -> list[bytes | memoryview]:
    """The frames of one message; arrays travel as raw C-contiguous buffers after the header."""
    contiguous = [np.ascontiguousarray(a) for a in arrays]
    header = {
        "v": PROTOCOL_VERSION,
        "kind": kind.value,
        "epoch": epoch,
        "f": fields or {},
        "a": [[a.dtype.str, list(a.shape)] for a in contiguous],
    }
    frames: list[bytes | memoryview] = [msgpack.packb(header, use_bin_type=True)]
    frames.extend(a.data.cast("B") if a.size else b"" for a in contiguous)
    return frames


def decode(frames: Sequence[bytes | memoryview | Any]) -> Envelope:
    """One message from its frames (zmq.Frame objects are read without copying)."""
    if not frames:
        raise ProtocolError("empty message")
    try:
        header = msgpack.unpackb(_buffer(frames[0]), raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"undecodable header: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("header is not a map")
    if header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {header.get('v')!r}, expected {PROTOCOL_VERSION}")
    try:
        kind = Kind(header["kind"])
        specs = header.get("a", [])
        if len(specs) != len(frames) - 1:
            raise ProtocolError(f"header announces {len(specs)} arrays, message has {len(frames) - 1}")
        arrays = [
            np.frombuffer(_buffer(frame), dtype=np.dtype(dtype)).reshape(shape)
            for (dtype, shape), frame in zip(specs, frames[1:], strict=True)
        ]
        return Envelope(kind, str(header["epoch"]), dict(header.get("f") or {}), arrays)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"malformed message: {exc}") from exc


def _buffer(frame: Any) -> bytes | memoryview:
    return frame.buffer if hasattr(frame, "buffer") else frame


# --- message bodies -------------------------------------------------------------------------------


def messages_to_wire(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Chat messages as plain data; images become indices into the attached arrays."""
    arrays: list[np.ndarray] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        parts: list[list[Any]] = []
        for part in message.parts:
            if isinstance(part, ImagePart):
                parts.append(["image", len(arrays)])
                arrays.append(part.pixels)
            else:
                parts.append(["text", part.text])
        wire.append({"role": message.role, "parts": parts})
    return wire, arrays


def messages_from_wire(wire: list[dict[str, Any]], arrays: Sequence[np.ndarray]) -> list[Message]:
    try:
        return [
            Message(
                m["role"],
                tuple(TextPart(p[1]) if p[0] == "text" else ImagePart(arrays[p[1]]) for p in m["parts"]),
            )
            for m in wire
        ]
    except (KeyError, IndexError, TypeError) as exc:
        raise ProtocolError(f"malformed messages: {exc}") from exc


def params_to_wire(params: SamplingParams) -> dict[str, Any]:
    data = asdict(params)
    data["stop"] = list(params.stop)
    return data


def params_from_wire(data: dict[str, Any]) -> SamplingParams:
    try:
        return SamplingParams(**{**data, "stop": tuple(data.get("stop", ()))})
    except TypeError as exc:
        raise ProtocolError(f"malformed sampling params: {exc}") from exc


def model_info_to_wire(info: ModelInfo) -> dict[str, Any]:
    data = asdict(info)
    data["capabilities"] = sorted(info.capabilities)
    return data


def model_info_from_wire(data: dict[str, Any]) -> ModelInfo:
    image_size = data.get("image_size")
    return ModelInfo(
        **{
            **data,
            "capabilities": frozenset(data.get("capabilities", ())),
            "image_size": tuple(image_size) if image_size else None,
        }
    )
