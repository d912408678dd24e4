"""ONNX export of the demo Qwen2-VL in the onnx-community/Qwen2-VL-2B-Instruct three-file layout.

The wrappers only reroute transformers' own modules so tracing keeps every varying size dynamic:
vision positions and the per-image attention split are computed from `grid_thw` with tensor ops (a
block-diagonal mask instead of transformers' Python split), and the decoder is traced with a non-zero
past so the past axis stays dynamic. `verify_export` checks the files against the torch model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.modeling_qwen2_vl import VisionAttention, apply_rotary_pos_emb_vision

OPSET = 18
VISION_FILE = "vision_encoder.onnx"
EMBED_FILE = "embed_tokens.onnx"
DECODER_FILE = "decoder_model_merged.onnx"


def patch_positions(
    grid_thw: torch.Tensor, n_patches_like: torch.Tensor, merge: int
) -> tuple[torch.Tensor, ...]:
    """Per patch: (h, w) rotary positions in the processor's block-major order, and a frame key.

    Patches with equal frame keys belong to the same image frame and attend to each other only.
    """
    t, h, w = grid_thw[:, 0], grid_thw[:, 1], grid_thw[:, 2]
    sizes = t * h * w
    ends = sizes.cumsum(0)
    starts = ends - sizes
    index = torch.ones_like(n_patches_like[:, 0], dtype=torch.long).cumsum(0) - 1
    image = (index[:, None] >= ends[None, :]).long().sum(1)
    local = index - starts[image]
    frame_size = (h * w)[image]
    within = local % frame_size
    frame_key = starts[image] + (local // frame_size) * frame_size
    blocks_per_row = w[image] // merge
    block, in_block = within // (merge * merge), within % (merge * merge)
    hpos = (block // blocks_per_row) * merge + in_block // merge
    wpos = (block % blocks_per_row) * merge + in_block % merge
    return torch.stack([hpos, wpos], dim=-1), frame_key


def masked_vision_attention(
    attn: VisionAttention, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """VisionAttention's eager math with an additive block-diagonal mask instead of a Python split."""
    n = x.shape[0]
    q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    weights = torch.matmul(q, k.transpose(1, 2)) * attn.scaling + mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(weights, v).transpose(0, 1).reshape(n, -1)
    return attn.proj(out)


class VisionEncoderExport(nn.Module):
    """pixel_values (patches, C*T*P*P), grid_thw (images, 3) -> merged image features (tokens, hidden)."""

    def __init__(self, model: Qwen2VLForConditionalGeneration) -> None:
        super().__init__()
        self.visual = model.model.visual
        self.merge = int(model.config.vision_config.spatial_merge_size)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        visual = self.visual
        x = visual.patch_embed(pixel_values)
        positions, frame_key = patch_positions(grid_thw, x, self.merge)
        cos, sin = visual.rotary_pos_emb(x, positions)
        same_frame = frame_key[:, None] == frame_key[None, :]
        mask = torch.where(same_frame, 0.0, torch.finfo(torch.float32).min)
        for block in visual.blocks:
            x = x + masked_vision_attention(block.attn, block.norm1(x), cos, sin, mask)
            x = x + block.mlp(block.norm2(x))
        return visual.merger(x)


class EmbedTokensExport(nn.Module):
    def __init__(self, model: Qwen2VLForConditionalGeneration) -> None:
        super().__init__()
        self.embed = model.model.language_model.embed_tokens

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids)


class DecoderExport(nn.Module):
    """inputs_embeds, attention_mask, position_ids (3,B,S), past k/v per layer -> logits, present k/v."""

    def __init__(self, model: Qwen2VLForConditionalGeneration) -> None:
        super().__init__()
        self.language_model = model.model.language_model
        self.lm_head = model.lm_head
        self.n_layers = int(model.config.text_config.num_hidden_layers)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.n_layers)])
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )
        presents = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        return (self.lm_head(out.last_hidden_state), *presents)


def past_names(n_layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(n_layers) for kind in ("key", "value")]


def export_onnx(model: Qwen2VLForConditionalGeneration, onnx_dir: Path) -> None:
    """Write the three ONNX files (legacy exporter, opset 18, dynamic axes)."""
    onnx_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    text = model.config.text_config
    vision = model.config.vision_config
    patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    grid = torch.tensor([[1, 4, 6], [1, 8, 2]], dtype=torch.long)
    pixels = torch.randn(int(grid.prod(-1).sum()), patch_dim)
    with torch.no_grad():
        torch.onnx.export(
            VisionEncoderExport(model),
            (pixels, grid),
            str(onnx_dir / VISION_FILE),
            dynamo=False,
            opset_version=OPSET,
            input_names=["pixel_values", "grid_thw"],
            output_names=["image_features"],
            dynamic_axes={
                "pixel_values": {0: "num_patches"},
                "grid_thw": {0: "num_images"},
                "image_features": {0: "num_image_tokens"},
            },
        )
        ids = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.long)
        torch.onnx.export(
            EmbedTokensExport(model),
            (ids,),
            str(onnx_dir / EMBED_FILE),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids"],
            output_names=["inputs_embeds"],
            dynamic_axes={
                "input_ids": {0: "batch_size", 1: "sequence_length"},
                "inputs_embeds": {0: "batch_size", 1: "sequence_length"},
            },
        )
        batch, seq, past_len = 2, 3, 5
        head_dim = text.hidden_size // text.num_attention_heads
        past = [
            torch.randn(batch, text.num_key_value_heads, past_len, head_dim)
            for _ in range(2 * text.num_hidden_layers)
        ]
        embeds = torch.randn(batch, seq, text.hidden_size)
        mask = torch.ones(batch, past_len + seq, dtype=torch.long)
        positions = (torch.arange(seq) + past_len).view(1, 1, -1).expand(3, batch, -1).contiguous()
        in_past = past_names(text.num_hidden_layers, "past_key_values")
        out_present = past_names(text.num_hidden_layers, "present")
        axes: dict[str, dict[int, str]] = {
            "inputs_embeds": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {1: "batch_size", 2: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"},
        }
        axes |= {name: {0: "batch_size", 2: "past_sequence_length"} for name in in_past}
        axes |= {name: {0: "batch_size", 2: "total_sequence_length"} for name in out_present}
        torch.onnx.export(
            DecoderExport(model),
            (embeds, mask, positions, *past),
            str(onnx_dir / DECODER_FILE),
            dynamo=False,
            opset_version=OPSET,
            input_names=["inputs_embeds", "attention_mask", "position_ids", *in_past],
            output_names=["logits", *out_present],
            dynamic_axes=axes,
        )
