"""The device's conversation context: the KV cache and what the GenAI server keeps beside it.

Like the device, the context outlives a generation: the next generate() continues after what is
cached until clear_context(). Kept here: the decoder's KV cache (the product's KVDecoder/DecodeRun),
the next M-RoPE position, the set of tokens generated in this context (the device's repetition
penalty history), and the tokens that ended the last generation but are not cached yet (the server's
m_next_input_prompt_prefix_tokens). Every embedding fed and its positions are kept too, so
save_context() can serialise the context and load_context() rebuild it with one prefill.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from hailo_double_tools.native import HAILO_INVALID_OPERATION, fail

from npu_worker.cpu.kv_decoder import DecodeRun, KVDecoder

CONTEXT_MAGIC = "hailo-double-context-v1"


@dataclass
class DeviceContext:
    decoder: KVDecoder
    model_key: str  # identifies the model: a context only loads into the model that saved it
    run: DecodeRun | None = None
    next_position: int = 0
    history: set[int] = field(default_factory=set)
    pending: list[int] = field(default_factory=list)
    embeds: list[np.ndarray] = field(default_factory=list)  # [1, n, H] chunks, in feeding order
    positions: list[np.ndarray] = field(default_factory=list)  # [3, 1, n] chunks

    @property
    def cached_tokens(self) -> int:
        return self.run.past_len if self.run is not None else 0

    @property
    def usage(self) -> int:
        """get_context_usage_size(): cached tokens plus the not-yet-cached end of the last answer."""
        return self.cached_tokens + len(self.pending)

    def clear(self) -> None:
        self.run = None
        self.next_position = 0
        self.history = set()
        self.pending = []
        self.embeds = []
        self.positions = []

    def feed(self, embeds: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Append embeddings [1, n, H] at absolute positions [3, 1, n]; the next-token logits row."""
        if self.run is None:
            self.run, logits = self.decoder.start(embeds, positions)
        else:
            logits = self.run.forward(embeds, positions)
        self.embeds.append(np.asarray(embeds, dtype=np.float32))
        self.positions.append(positions)
        self.next_position = int(positions.max()) + 1
        return logits

    def save(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            magic=np.array(CONTEXT_MAGIC),
            model=np.array(self.model_key),
            embeds=np.concatenate(self.embeds, axis=1) if self.embeds else np.zeros((1, 0, 0), np.float32),
            positions=np.concatenate(self.positions, axis=2)
            if self.positions
            else np.zeros((3, 1, 0), np.int64),
            history=np.array(sorted(self.history), dtype=np.int64),
            pending=np.array(self.pending, dtype=np.int64),
        )
        return buffer.getvalue()

    def load(self, blob: bytes) -> None:
        try:
            data = np.load(io.BytesIO(blob), allow_pickle=False)
            magic, model = str(data["magic"]), str(data["model"])
        except (OSError, ValueError, KeyError):
            fail(HAILO_INVALID_OPERATION, "Failed to set context: not a context blob")
        if magic != CONTEXT_MAGIC or model != self.model_key:
            fail(HAILO_INVALID_OPERATION, "Failed to set context: it was saved by a different model")
        self.clear()
        if data["embeds"].shape[1]:
            self.feed(data["embeds"], data["positions"])
        self.history = {int(t) for t in data["history"]}
        self.pending = [int(t) for t in data["pending"]]
