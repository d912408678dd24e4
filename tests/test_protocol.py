"""The wire protocol: every message kind round-trips as its own class; malformed frames fail loudly."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from npu_worker import codec, protocol
from npu_worker.backend import ImagePart, Message, ModelInfo, SamplingParams, TextPart
from npu_worker.protocol import (
    MESSAGES,
    Abort,
    Embed,
    Embeddings,
    Error,
    Final,
    Generate,
    Heartbeat,
    Kind,
    Limits,
    Load,
    Ping,
    Placement,
    Pong,
    ProtocolError,
    Release,
    ReleaseScope,
    Stats,
    StatsRequest,
    Status,
    Token,
    Wire,
)
from npu_worker.states import ApiState, NpuOwner, Role, Rung, WorkerState

CAPS = frozenset({"embed"})
IMAGE = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
SAMPLES: list[Wire] = [
    Generate(
        "r1",
        "vlm",
        (Message("system", (TextPart("be brief"),)), Message("user", (ImagePart(IMAGE), TextPart("what?")))),
        SamplingParams(max_tokens=7, temperature=0.0, stop=("\n",), seed=3),
        12.5,
        False,
    ),
    Embed("r2", "clip", ("a cat", "a dog"), ("a photo of {}.",), (IMAGE, IMAGE)),
    Abort("r3"),
    Ping(4),
    StatsRequest(5),
    Load("a vision request is queued"),
    Release(ReleaseScope.DEVICE, "idle for 120 s"),
    Limits(2, 0.5, 0.25),
    Heartbeat(
        state=WorkerState.NPU_BUSY,
        detail="held by pid 812 (hailo-ollama)",
        backend="hailo",
        models=(ModelInfo("clip", "clip", "hailo", embedding_dim=64, image_size=(9, 9), capabilities=CAPS),),
        queued=2,
        in_flight=1,
        pid=99,
        model_load_seconds=9.7,
        details={"hailort": "5.1.1"},
        clip_placement=Placement.CPU,
        retry_in_s=4.0,
        chip_temperature_c=61.5,
    ),
    Token("r1", "blue", 17),
    Final("r1", "", "stop", 30, 3, 0.1, 0.2, 0.3),
    Embeddings("r2", "clip", 100.0, 4, 1, 2, 0.0, 0.01, np.ones((2, 4), np.float32), np.zeros((2, 4), "f4")),
    Error("r1", "npu_busy", "the NPU is busy", None),
    Pong(4),
    Stats(5, 9.7, 100, 3, 1, 0, 0, 10, 2, 12, 3072, 4, 9),
    Status(Role.API, 10, ApiState.LISTENING, "", 1, 0, "v", True, NpuOwner.HAILO_OLLAMA, "q", Rung.CAPPED),
    Status(Role.WORKER, 11, WorkerState.RELEASED, "idle", 0, 0, "vlm"),
]  # fmt: skip


def _equal(a: object, b: object) -> bool:
    """Dataclass equality, with numpy arrays (which do not compare to one bool) compared by value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(_equal(getattr(a, name), getattr(b, name)) for name in a.__dataclass_fields__)
    return a == b


def test_every_kind_has_a_sample_here() -> None:
    assert {type(m) for m in SAMPLES} == set(MESSAGES.values())
    assert set(MESSAGES) == set(Kind)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_each_message_round_trips_as_its_own_class(message: Wire) -> None:
    envelope = codec.decode(codec.encode(message, "epoch1"))
    assert envelope.epoch == "epoch1"
    assert type(envelope.message) is type(message)
    assert _equal(envelope.message, message)


def test_enums_come_back_as_enums() -> None:
    beat = codec.decode(codec.encode(next(m for m in SAMPLES if isinstance(m, Heartbeat)), "e")).message
    assert isinstance(beat, Heartbeat)
    assert beat.state is WorkerState.NPU_BUSY and beat.clip_placement is Placement.CPU
    status = codec.decode(codec.encode(SAMPLES[-1], "e")).message
    assert isinstance(status, Status) and status.state is WorkerState.RELEASED and status.role is Role.WORKER
    api = codec.decode(codec.encode(SAMPLES[-2], "e")).message
    assert isinstance(api, Status) and api.rung is Rung.CAPPED and api.state is ApiState.LISTENING


def _frames(kind: str, fields: dict[str, object], version: int = protocol.PROTOCOL_VERSION) -> list[bytes]:
    header = {"v": version, "kind": kind, "epoch": "e", "f": fields, "a": []}
    return [msgpack.packb(header, use_bin_type=True)]


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([], "empty message"),
        ([b"\xc1"], "undecodable header"),
        (_frames("token", {"rid": "r", "text": "x", "id": 1}, version=1), "protocol version 1"),
        (_frames("token", {"rid": "r", "txt": "x", "id": 1}), "malformed 'token' message"),
        (_frames("token", {"rid": "r", "text": "x"}), "malformed 'token' message"),
        (_frames("teleport", {}), "malformed 'teleport' message"),
        (_frames("heartbeat", {"state": "dreaming"}), "malformed 'heartbeat' message"),
    ],
)
def test_malformed_frames_are_protocol_errors(frames: list[bytes], expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected):
        codec.decode(frames)


def test_arrays_travel_as_raw_frames_not_in_the_header() -> None:
    frames = codec.encode(SAMPLES[1], "e")
    assert len(frames) == 3  # header + two images
    assert bytes(frames[1]) == IMAGE.tobytes()
    assert len(frames[0]) < 200
