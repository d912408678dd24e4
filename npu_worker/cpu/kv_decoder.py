"""Step an exported decoder (decoder_model_merged.onnx) token by token with its KV cache kept in ORT.

The present key/values of one run are bound, as ONNX Runtime's own OrtValues, as the past of the next
run (IO binding), so the growing cache is never copied into numpy and back; only the logits row is.
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
        self, session: ort.InferenceSession, num_layers: int, num_kv_heads: int, head_dim: int
    ) -> None:
        self.session = session
        self.past_names = past_names(num_layers)
        self.output_names = ["logits", *present_names(num_layers)]
        self.embed_dtype = numpy_dtype(session, "inputs_embeds", "decoder")
        self.kv_dtype = numpy_dtype(session, self.past_names[0], "decoder")
        self.empty_past = np.zeros((1, num_kv_heads, 0, head_dim), dtype=self.kv_dtype)
        self.mask = np.ones((1, 0), dtype=np.int64)

    def start(self, inputs_embeds: np.ndarray, position_ids: np.ndarray) -> tuple[DecodeRun, np.ndarray]:
        """Prefill the prompt (embeds [1, S, H], positions [3, 1, S]): a run and the last logits row."""
        run = DecodeRun(self)
        return run, run.forward(inputs_embeds, position_ids)

    def attention_mask(self, length: int) -> np.ndarray:
        """An all-ones int64[1, length] view of one growing buffer (no allocation per step)."""
        if self.mask.shape[1] < length:
            self.mask = np.ones((1, max(length, 2 * self.mask.shape[1], 256)), dtype=np.int64)
        return self.mask[:, :length]


class DecodeRun:
    """One generation's KV cache; feed one embedding per step, read back the next logits row."""

    def __init__(self, decoder: KVDecoder) -> None:
        self.decoder = decoder
        self.binding = decoder.session.io_binding()
        self.past_len = 0
        for name in decoder.past_names:
            self.binding.bind_cpu_input(name, decoder.empty_past)

    def forward(self, inputs_embeds: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
        """Append inputs_embeds [1, S, H] at position_ids [3, 1, S]; the logits row of the last one."""
        decoder, binding = self.decoder, self.binding
        self.past_len += inputs_embeds.shape[1]
        binding.bind_cpu_input("inputs_embeds", inputs_embeds.astype(decoder.embed_dtype, copy=False))
        binding.bind_cpu_input("attention_mask", decoder.attention_mask(self.past_len))
        binding.bind_cpu_input("position_ids", position_ids)
        for name in decoder.output_names:
            binding.bind_output(name, "cpu")
        decoder.session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        for name, present in zip(decoder.past_names, outputs[1:], strict=True):
            binding.bind_ortvalue_input(name, present)
        return outputs[0].numpy()[0, -1]
