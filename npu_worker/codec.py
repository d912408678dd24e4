"""A message as ZeroMQ frames and back: a msgpack header, then one raw frame per numpy array.

The header holds the protocol version `v`, the message `kind`, the sender's `epoch`, the fields `f`
and each array's dtype and shape `a`; images and embeddings never go through base64 or msgpack.
`decode` rebuilds the sender's class (npu_worker.protocol) or raises ProtocolError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from npu_worker.protocol import MESSAGES, PROTOCOL_VERSION, Kind, ProtocolError, Wire


@dataclass(frozen=True)
class Envelope:
    """A decoded message and the epoch of the process that sent it."""

    epoch: str
    message: Wire


def encode(message: Wire, epoch: str) -> list[bytes | memoryview]:
    """The frames of one message; arrays travel as raw C-contiguous buffers after the header."""
    fields, arrays = message.to_wire()
    contiguous = [np.ascontiguousarray(a) for a in arrays]
    header = {
        "v": PROTOCOL_VERSION,
        "kind": message.KIND.value,
        "epoch": epoch,
        "f": fields,
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
        cls = MESSAGES[Kind(header["kind"])]
        specs = header["a"]
        if len(specs) != len(frames) - 1:
            raise ProtocolError(f"header announces {len(specs)} arrays, message has {len(frames) - 1}")
        arrays = [
            np.frombuffer(_buffer(frame), dtype=np.dtype(dtype)).reshape(shape)
            for (dtype, shape), frame in zip(specs, frames[1:], strict=True)
        ]
        return Envelope(str(header["epoch"]), cls.from_wire(dict(header["f"]), arrays))
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"malformed {header.get('kind')!r} message: {exc!r}") from exc


def _buffer(frame: Any) -> bytes | memoryview:
    return frame.buffer if hasattr(frame, "buffer") else frame
