"""Write a trained demo CLIP in the Hugging Face / optimum export layout the CPU runner reads.

config.json (CLIPConfig plus a top-level "logit_scale": the trained log value, which CLIPConfig
itself does not keep), preprocessor_config.json (CLIPImageProcessor fields), and the two encoders as
optimum exports them: onnx/vision_model.onnx (pixel_values -> image_embeds, last_hidden_state) and
onnx/text_model.onnx (input_ids -> text_embeds, last_hidden_state); embeddings projected, not
normalised, text pooled at the first eos token; batch (and text length) axes dynamic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from transformers import CLIPConfig, CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

OPSET = 17


class VisionWithProjection(torch.nn.Module):
    """CLIPVisionModelWithProjection's outputs, from the shared CLIPModel weights."""

    def __init__(self, model: CLIPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.vision_model(pixel_values=pixel_values)
        return self.model.visual_projection(out.pooler_output), out.last_hidden_state


class TextWithProjection(torch.nn.Module):
    """CLIPTextModelWithProjection's outputs, from the shared CLIPModel weights."""

    def __init__(self, model: CLIPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model.text_model(input_ids=input_ids)
        return self.model.text_projection(out.pooler_output), out.last_hidden_state


def save_configs(model: CLIPModel, out_dir: Path) -> None:
    """config.json with the trained logit scale, and the squash-to-square preprocessor config."""
    model.config.save_pretrained(out_dir)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["logit_scale"] = float(model.logit_scale.detach())
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    side = model.config.vision_config.image_size
    processor = CLIPImageProcessorPil(
        size={"height": side, "width": side},
        do_center_crop=False,
        crop_size={"height": side, "width": side},
    )
    processor.save_pretrained(out_dir)


def eager_copy(model: CLIPModel) -> CLIPModel:
    """The same weights with eager attention, which the legacy ONNX exporter traces cleanly."""
    config = CLIPConfig.from_dict(model.config.to_dict())
    copy = CLIPModel._from_config(config, attn_implementation="eager")
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def export_onnx(model: CLIPModel, out_dir: Path) -> None:
    onnx_dir = out_dir / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    eager = eager_copy(model)
    side = model.config.vision_config.image_size
    eos = model.config.text_config.eos_token_id
    pixels = torch.randn(2, 3, side, side)
    ids = torch.tensor([[eos - 1, 300, 301, 302, eos, eos], [eos - 1, 303, 304, 305, 306, eos]])
    with torch.no_grad():
        torch.onnx.export(
            VisionWithProjection(eager),
            (pixels,),
            str(onnx_dir / "vision_model.onnx"),
            input_names=["pixel_values"],
            output_names=["image_embeds", "last_hidden_state"],
            dynamic_axes={
                "pixel_values": {0: "batch_size"},
                "image_embeds": {0: "batch_size"},
                "last_hidden_state": {0: "batch_size"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        torch.onnx.export(
            TextWithProjection(eager),
            (ids,),
            str(onnx_dir / "text_model.onnx"),
            input_names=["input_ids"],
            output_names=["text_embeds", "last_hidden_state"],
            dynamic_axes={
                "input_ids": {0: "batch_size", 1: "sequence_length"},
                "text_embeds": {0: "batch_size"},
                "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def check_onnx(model: CLIPModel, out_dir: Path, seed: int = 0) -> float:
    """Largest |ONNX - torch| over batch sizes and text lengths other than the traced ones."""
    rng = np.random.default_rng(seed)
    side = model.config.vision_config.image_size
    eos = model.config.text_config.eos_token_id
    vision = ort.InferenceSession(str(out_dir / "onnx/vision_model.onnx"), providers=["CPUExecutionProvider"])
    text = ort.InferenceSession(str(out_dir / "onnx/text_model.onnx"), providers=["CPUExecutionProvider"])
    worst = 0.0
    model = model.eval()
    for batch, length in ((1, 3), (3, 9), (5, 20)):
        pixels = rng.standard_normal((batch, 3, side, side)).astype(np.float32)
        ids = rng.integers(256, eos - 1, (batch, length))
        ids[:, 0], ids[:, -1] = eos - 1, eos
        ids[0, 1:] = eos  # padding after the first eos must not change the pooled token
        with torch.no_grad():
            want_img = model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output.numpy()
            want_txt = model.get_text_features(input_ids=torch.from_numpy(ids)).pooler_output.numpy()
        got_img = vision.run(["image_embeds"], {"pixel_values": pixels})[0]
        got_txt = text.run(["text_embeds"], {"input_ids": ids.astype(np.int64)})[0]
        worst = max(worst, float(np.abs(got_img - want_img).max()), float(np.abs(got_txt - want_txt).max()))
    print(f"onnx vs torch: max abs difference {worst:.2e}", file=sys.stderr)
    return worst
