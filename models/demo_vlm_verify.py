"""Check the exported ONNX files against the torch model before anything is written to the repo.

A minimal ONNX Runtime greedy loop (vision encoder -> embeddings with image and clip features scattered
in -> decoder with a KV cache that starts empty) must reproduce the torch first-step logits and the
greedy tokens of `model.generate`, for square, non-square, multi-image and clip prompts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from demo_vlm_export import DECODER_FILE, EMBED_FILE, VISION_FILE, past_names
from demo_vlm_inputs import Encoded, InputBuilder
from transformers import Qwen2VLForConditionalGeneration

LOGIT_TOLERANCE = 1e-3


def torch_reference(
    model: Qwen2VLForConditionalGeneration, builder: InputBuilder, enc: Encoded, max_new_tokens: int
) -> dict[str, np.ndarray]:
    """First-step logits, 3D positions, rope deltas and greedy tokens from transformers."""
    inputs = builder.tensors([enc])
    with torch.no_grad():
        positions, deltas = model.model.get_rope_index(
            inputs["input_ids"],
            inputs["mm_token_type_ids"],
            image_grid_thw=inputs.get("image_grid_thw"),
            video_grid_thw=inputs.get("video_grid_thw"),
            attention_mask=inputs["attention_mask"],
        )
        logits = model(**inputs).logits[0, -1].float().numpy()
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return {
        "position_ids": positions.numpy(),
        "rope_deltas": deltas.numpy(),
        "last_logits": logits,
        "generated_ids": generated[0, inputs["input_ids"].shape[1] :].numpy(),
    }


class OnnxGreedy:
    """The three ONNX sessions and a greedy decoding loop over them."""

    def __init__(self, onnx_dir: Path, n_layers: int, kv_heads: int, head_dim: int) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.vision = ort.InferenceSession(str(onnx_dir / VISION_FILE), opts)
        self.embed = ort.InferenceSession(str(onnx_dir / EMBED_FILE), opts)
        self.decoder = ort.InferenceSession(str(onnx_dir / DECODER_FILE), opts)
        self.past_names = past_names(n_layers, "past_key_values")
        self.empty_past = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)

    def image_features(self, pixel_values: np.ndarray, grid: np.ndarray) -> np.ndarray:
        return self.vision.run(None, {"pixel_values": pixel_values, "grid_thw": grid})[0]

    def generate(
        self,
        enc: Encoded,
        positions: np.ndarray,
        delta: int,
        pads: tuple[int, int],
        eos: set[int],
        max_new: int,
    ) -> tuple[np.ndarray, list[int]]:
        """Greedy tokens; `pads` are the image and video pad ids, where the vision features go."""
        ids = np.array([enc.input_ids], dtype=np.int64)
        embeds = self.embed.run(None, {"input_ids": ids})[0]
        if enc.pixel_values is not None and enc.image_grid_thw is not None:
            embeds[ids == pads[0]] = self.image_features(enc.pixel_values, enc.image_grid_thw)
        if enc.pixel_values_videos is not None and enc.video_grid_thw is not None:
            embeds[ids == pads[1]] = self.image_features(enc.pixel_values_videos, enc.video_grid_thw)
        past = {name: self.empty_past for name in self.past_names}
        length, tokens, first_logits = ids.shape[1], [], None
        for _ in range(max_new):
            feed = {
                "inputs_embeds": embeds,
                "attention_mask": np.ones((1, length), dtype=np.int64),
                "position_ids": positions.astype(np.int64),
                **past,
            }
            logits, *present = self.decoder.run(None, feed)
            first_logits = logits[0, -1] if first_logits is None else first_logits
            token = int(np.argmax(logits[0, -1]))
            tokens.append(token)
            if token in eos:
                break
            past = dict(zip(self.past_names, present, strict=True))
            embeds = self.embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
            positions = np.full((3, 1, 1), length + delta, dtype=np.int64)
            length += 1
        assert first_logits is not None
        return first_logits, tokens


def verify_export(
    model: Qwen2VLForConditionalGeneration,
    builder: InputBuilder,
    onnx_dir: Path,
    cases: list[Encoded],
    max_new: int,
) -> float:
    """Raise if ONNX Runtime disagrees with torch on any case; return the largest logit difference."""
    text = model.config.text_config
    runner = OnnxGreedy(
        onnx_dir,
        text.num_hidden_layers,
        text.num_key_value_heads,
        text.hidden_size // text.num_attention_heads,
    )
    eos = set(model.generation_config.eos_token_id)
    worst = 0.0
    for enc in cases:
        for values, grid in (
            (enc.pixel_values, enc.image_grid_thw),
            (enc.pixel_values_videos, enc.video_grid_thw),
        ):
            if values is None or grid is None:
                continue
            with torch.no_grad():
                ref = model.model.get_image_features(
                    torch.from_numpy(values), torch.from_numpy(grid)
                ).pooler_output
            diff = float(np.abs(torch.cat(ref).numpy() - runner.image_features(values, grid)).max())
            if diff > LOGIT_TOLERANCE:
                raise AssertionError(f"vision features differ by {diff}")
        ref = torch_reference(model, builder, enc, max_new)
        pads = (builder.image_pad_id, builder.video_pad_id)
        logits, tokens = runner.generate(
            enc, ref["position_ids"], int(ref["rope_deltas"][0, 0]), pads, eos, max_new
        )
        diff = float(np.abs(logits - ref["last_logits"]).max())
        worst = max(worst, diff)
        if diff > LOGIT_TOLERANCE or tokens != ref["generated_ids"].tolist():
            raise AssertionError(
                f"ONNX mismatch: logit diff {diff}, tokens {tokens} vs {ref['generated_ids'].tolist()}"
            )
        grids = [g.tolist() for g in (enc.image_grid_thw, enc.video_grid_thw) if g is not None]
        print(f"verify: grids {grids} ok, logit diff {diff:.2e}, tokens {tokens}", file=sys.stderr)
    return worst
