"""Golden fixtures for the CLIP runner, computed with transformers (never with the ONNX export).

The runner's tests compare against these: HF CLIPImageProcessor pixel values (the demo's squash mode
and, on a non-square image, the shortest-edge + center-crop mode of released CLIP models), HF
tokenizer input ids, and the torch model's projected image and text embeddings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapes_world as sw
import torch
import transformers
from PIL import Image
from transformers import AutoTokenizer, CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

PROMPTS: tuple[str, ...] = (
    "a photo of a red circle",
    "a photo of a small blue triangle.",
    "a red circle and a blue square",
    "A PHOTO OF A  Green Square!",
)
# Released CLIP's mode, shrunk to keep the fixture small: short side to 64, then a 56 x 48 center crop.
SHORTEST_EDGE_MODE = {"size": {"shortest_edge": 64}, "crop_size": {"height": 56, "width": 48}}


def golden_scenes() -> dict[str, sw.Scene]:
    """A plain red circle, a wide two-shape scene with a shape at the edge, a tall random scene."""
    red_circle = sw.Scene(
        160, 160, (238, 236, 240), (sw.Shape("circle", "red", (35, 30, 125, 120)),), ((0, 0, 0),)
    )
    wide = sw.Scene(
        300,
        140,
        (230, 232, 226),
        (sw.Shape("square", "blue", (0, 20, 70, 90)), sw.Shape("triangle", "yellow", (180, 40, 260, 120))),
        ((0, 0, 0), (5, -5, 3)),
    )
    tall = sw.random_scene(np.random.default_rng(7), n_shapes=1, size=(130, 410))
    return {"red_circle.png": red_circle, "wide_two_shapes.png": wide, "tall.png": tall}


def write_golden(model: CLIPModel, model_dir: Path, golden_dir: Path) -> None:
    golden_dir.mkdir(parents=True, exist_ok=True)
    scenes = golden_scenes()
    for name, scene in scenes.items():
        sw.render(scene).save(golden_dir / name)
    images = [Image.open(golden_dir / name).convert("RGB") for name in scenes]

    processor = CLIPImageProcessorPil.from_pretrained(model_dir)
    pixel_values = processor(images=images, return_tensors="np")["pixel_values"]
    shortest_edge = CLIPImageProcessorPil(**SHORTEST_EDGE_MODE)(images=images[1], return_tensors="np")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    input_ids = tokenizer(list(PROMPTS), padding=True, return_tensors="np")["input_ids"]
    model = model.eval()
    with torch.no_grad():
        image_embeds = model.get_image_features(pixel_values=torch.from_numpy(pixel_values)).pooler_output
        text_embeds = model.get_text_features(input_ids=torch.from_numpy(input_ids)).pooler_output
    np.savez_compressed(
        golden_dir / "clip_golden.npz",
        pixel_values=pixel_values.astype(np.float32),
        pixel_values_shortest_edge=shortest_edge["pixel_values"].astype(np.float32),
        input_ids=input_ids.astype(np.int64),
        image_embeds=image_embeds.numpy().astype(np.float32),
        text_embeds=text_embeds.numpy().astype(np.float32),
    )
    cases = {
        "model_dir": "models/demo/clip-demo",
        "images": list(scenes),
        "prompts": list(PROMPTS),
        "shortest_edge_mode": {"image": list(scenes)[1], "preprocessor_config": SHORTEST_EDGE_MODE},
        "logit_scale": float(model.logit_scale.detach()),
        "made_with": {"transformers": transformers.__version__, "torch": torch.__version__},
    }
    (golden_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    (golden_dir / "README.md").write_text(README)


README = """# CLIP golden fixtures

Made by `models/make_demo_clip.py` together with the demo model in `models/demo/clip-demo`, with
transformers and torch (never with the ONNX export), so `tests/test_clip_runner.py` checks the ONNX
runner against the reference implementation. Regenerate them whenever the demo model is retrained.

- `*.png`: the input images (lossless; one wide, one tall).
- `clip_golden.npz`:
  - `pixel_values` [3, 3, S, S]: HF `CLIPImageProcessor` (PIL backend) with the model's
    preprocessor_config.json (squash to S x S, no crop), for the images in `cases.json` order;
  - `pixel_values_shortest_edge` [1, 3, 56, 48]: the same processor in released CLIP's mode
    (`shortest_edge` resize + center crop, settings in `cases.json`) on the wide image;
  - `input_ids`: HF tokenizer (from the model's tokenizer.json) on the prompts, padded to the longest;
  - `image_embeds`, `text_embeds`: the torch model's projected, unnormalised embeddings.
- `cases.json`: file names, prompts, the shortest-edge settings, the trained logit scale (log value).
"""
