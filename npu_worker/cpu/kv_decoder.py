"""Step an exported decoder (decoder_model_merged.onnx) token by token, feeding its KV cache back.

Each run's present key/values are passed as the next run's past exactly as session.run returned them.
ONNX Runtime (1.32, measured) hands CPU outputs to numpy without copying and takes contiguous inputs
without copying, so the growing cache is never copied. On the demo model this plain loop beat IO
binding (re-binding ~20 names per step costs more than it saves) and run_with_ortvaluevector.
Input dtypes (float32 or float16 caches and embeddings) are read from the session.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from npu_worker.backend import ModelLoadError

ORT_TO_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def numpy_dtype(session: ort.InferenceSession, name: str, where: str) -> np.dtype:
    """The numpy dtype of a float input of the session."""
    arg = next(i for i in session.get_inputs() if i.name == name)
    if arg.type not in ORT_TO_NUMPY:
        raise ModelLoadError(f"{where}: input {name!r} has unsupported type {arg.type}")
    return np.dtype(ORT_TO_NUMPY[arg.type])


def past_names(num_layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]


def present_names(num_layers: int) -> list[str]:
    return [f"present.{i}.{kind}" for i in range(num_layers) for kind in ("key", "value")]


class KVDecoder:
    """The decoder session plus what every run needs: names, dtypes and a reusable attention mask."""

    def __init__(
        self, session: ort.InferenceSession, source: str, num_layers: int, num_kv_heads: int, head_dim: int
    ) -> None:
        """`source` (the file) names the decoder in load errors."""
        self.session = session
        self.past_names = past_names(num_layers)
        self.output_names = ["logits", *present_names(num_layers)]
        self.embed_dtype = numpy_dtype(session, "inputs_embeds", source)
        self.kv_dtype = numpy_dtype(session, self.past_names[0], source)
        past_shape = next(i.shape for i in session.get_inputs() if i.name == self.past_names[0])
        for axis, expected in ((1, num_kv_heads), (3, head_dim)):
            if isinstance(past_shape[axis], int) and past_shape[axis] != expected:
                raise ModelLoadError(
                    f"{source}: {self.past_names[0]} has shape {past_shape} but config.json gives "
                    f"{num_kv_heads} key/value heads of size {head_dim}"
                )
        self.empty_past = np.zeros((1, num_kv_heads, 0, head_dim), dtype=self.kv_dtype)
        self.mask = np.ones((1, 0), dtype=np.int64)

    def start(
        self, inputs_embeds: np.ndarray, position_ids: np.ndarray, kept: list[np.ndarray] | None = None
    ) -> tuple[DecodeRun, np.ndarray]:
        """Prefill the prompt (embeds [1, S, H], positions [3, 1, S]) after `kept` (a cache of earlier
        tokens, or none): a run and the last logits row."""
        run = DecodeRun(self, kept)
        return run, run.forward(inputs_embeds, position_ids)

    def attention_mask(self, length: int) -> np.ndarray:
        """An all-ones int64[1, length] view of one growing buffer (no allocation per step)."""
        if self.mask.shape[1] < length:
            self.mask = np.ones((1, max(length, 2 * self.mask.shape[1], 256)), dtype=np.int64)
        return self.mask[:, :length]


class DecodeRun:
    """One generation's KV cache; feed one embedding per step, read back the next logits row."""

    def __init__(self, decoder: KVDecoder, kept: list[np.ndarray] | None = None) -> None:
        self.decoder = decoder
        self.cache: list[np.ndarray] = kept or [decoder.empty_past] * len(decoder.past_names)
        self.past_len = int(self.cache[0].shape[2])

    def forward(self, inputs_embeds: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
        """Append inputs_embeds [1, S, H] at position_ids [3, 1, S]; the logits row of the last one."""
        decoder = self.decoder
        self.past_len += inputs_embeds.shape[1]
        feed = dict(zip(decoder.past_names, self.cache, strict=True))
        feed["inputs_embeds"] = inputs_embeds.astype(decoder.embed_dtype, copy=False)
        feed["attention_mask"] = decoder.attention_mask(self.past_len)
        feed["position_ids"] = position_ids
        outputs = decoder.session.run(decoder.output_names, feed)
        self.cache = outputs[1:]
        return np.array(outputs[0][0, -1])  # a copy, so the full logits buffer can be freed
