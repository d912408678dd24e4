"""Golden fixtures for the ONNX runner's tests, computed with transformers (never with the ONNX export).

Eight cases cover one image, a non-square image, two images in one message, a multi-turn chat with a
system message, text only, a four-frame clip, a three-frame clip (padded with its last frame) and an
image with a clip. Images and frames are saved as PNG; arrays go into one compressed .npz keyed
"<case>/<array>", and everything else into cases.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import shapes_world as sw
from demo_vlm_inputs import InputBuilder, render_prompt, video_patches
from demo_vlm_verify import torch_reference
from PIL import Image
from transformers import Qwen2VLForConditionalGeneration

MAX_NEW_TOKENS = 12
GOLDEN_SEED = 20240601

README = """# Golden fixtures for the demo Qwen2-VL (models/demo/qwen2-vl-demo)

Written by `models/make_demo_vlm.py` with transformers + torch from the trained model (never from the
ONNX export), so the ONNX runner can be tested against them. Regenerated whenever the model is retrained.

- `images/*.png`: the input images (shapes world, fixed seeds): `square.png` 224x224, `wide.png` 320x160,
  `tall.png` 160x400, and clip frames `move_<i>.png` (a shape crossing a 112x112 frame) and
  `turn_<i>.png` (a shape turning another colour).
- `cases.json`: list of cases, each with `name`, `messages` (HF content-part format; image parts carry
  `"image": "images/<file>.png"`, clip parts `"video": ["images/<frame>.png", ...]`), `images` (files
  in prompt order), `prompt` (the tokenizer's chat template with add_generation_prompt=True),
  `generated_text` (greedy reply decoded without special tokens), and `max_new_tokens`.
- `arrays.npz`: per case, keys `<name>/<array>`:
  `input_ids` int64 (S,) with each `<|image_pad|>` repeated t*h*w/merge^2 times;
  `pixel_values` float32 (patches, 1176) and `image_grid_thw` int64 (images, 3) from the HF Qwen2-VL
  image processor (absent for text-only cases);
  `pixel_values_videos` float32 (patches, 1176) and `video_grid_thw` int64 (clips, 3) for clips: the
  layout of transformers' Qwen2VLVideoProcessor.patchify, made in numpy (that processor needs
  torchvision, which cannot be installed beside the pinned torch) and checked against transformers'
  image processor on a still clip (two equal frames give the image's patches);
  `position_ids` int64 (3, 1, S) and `rope_deltas` int64 (1, 1) from the model's `get_rope_index`
  (token types: image pad 1, video pad 2);
  `last_logits` float32 (vocab,) at the last prompt position of the first forward step;
  `generated_ids` int64 greedy tokens of `model.generate(max_new_tokens=12, do_sample=False)`, ending with
  `<|im_end|>` when the model stopped.
"""


def golden_images() -> dict[str, Image.Image]:
    """The three fixed input images."""
    rng = np.random.default_rng(GOLDEN_SEED)
    scenes = {
        "square.png": sw.random_scene(rng, n_shapes=1, size=(224, 224), min_fraction=0.4),
        "wide.png": sw.random_scene(rng, n_shapes=1, size=(320, 160), min_fraction=0.4),
        "tall.png": sw.random_scene(rng, n_shapes=2, size=(160, 400)),
    }
    images = {name: sw.render(scene) for name, scene in scenes.items()}
    for prefix, kind in (("move", "motion"), ("turn", "turn")):
        frames, _ = sw.random_clip(rng, kind)
        images |= {f"{prefix}_{i}.png": sw.render(frame) for i, frame in enumerate(frames)}
    return images


def video_part(prefix: str, frames: int) -> dict[str, Any]:
    return {"type": "video", "video": [f"images/{prefix}_{i}.png" for i in range(frames)]}


def image_part(name: str) -> dict[str, str]:
    return {"type": "image", "image": f"images/{name}"}


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def golden_cases() -> list[dict[str, Any]]:
    """Names, messages and image files of the five cases."""
    return [
        {
            "name": "single_image",
            "messages": [
                {"role": "user", "content": [image_part("square.png"), text_part(sw.QUESTIONS["colour"])]}
            ],
        },
        {
            "name": "non_square_image",
            "messages": [
                {"role": "user", "content": [image_part("wide.png"), text_part(sw.QUESTIONS["shape"])]}
            ],
        },
        {
            "name": "two_images",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        image_part("square.png"),
                        image_part("tall.png"),
                        text_part(sw.QUESTIONS["count"]),
                    ],
                }
            ],
        },
        {
            "name": "multi_turn",
            "messages": [
                {"role": "system", "content": [text_part("You answer questions about shapes.")]},
                {"role": "user", "content": [image_part("tall.png"), text_part(sw.QUESTIONS["count"])]},
                {"role": "assistant", "content": [text_part("two")]},
                {"role": "user", "content": [text_part("Describe the image.")]},
            ],
        },
        {"name": "text_only", "messages": [{"role": "user", "content": [text_part("Hello!")]}]},
        {
            "name": "clip",
            "messages": [
                {"role": "user", "content": [video_part("move", 4), text_part(sw.CLIP_QUESTIONS["motion"])]}
            ],
        },
        {
            "name": "clip_odd_frames",
            "messages": [
                {"role": "user", "content": [video_part("turn", 3), text_part(sw.CLIP_QUESTIONS["turn"])]}
            ],
        },
        {
            "name": "image_and_clip",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        image_part("wide.png"),
                        video_part("turn", 4),
                        text_part(sw.CLIP_QUESTIONS["turn"]),
                    ],
                }
            ],
        },
    ]


def case_image_files(messages: list[dict[str, Any]]) -> list[str]:
    return [Path(p["image"]).name for m in messages for p in m["content"] if p.get("type") == "image"]


def case_clips(messages: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [Path(f).name for f in p["video"]] for m in messages for p in m["content"] if p.get("type") == "video"
    ]


def check_clip_layout(builder: InputBuilder, image: Image.Image) -> None:
    """A still clip (two equal frames) must give exactly transformers' patches of the image."""
    still, grid = video_patches([image, image], builder.processor)
    expected = builder.processor(images=[image], return_tensors="np")
    if grid != tuple(expected["image_grid_thw"][0]) or not np.allclose(
        still, expected["pixel_values"], rtol=0, atol=1e-5
    ):
        raise AssertionError("clip patches are not laid out as transformers lays out an image's")


def write_golden(
    model: Qwen2VLForConditionalGeneration, builder: InputBuilder, hf_tokenizer: Any, golden_dir: Path
) -> None:
    """Compute every case with transformers and write the fixture folder from scratch."""
    if golden_dir.exists():
        shutil.rmtree(golden_dir)
    (golden_dir / "images").mkdir(parents=True)
    for name, image in golden_images().items():
        image.save(golden_dir / "images" / name, format="PNG")
    arrays: dict[str, np.ndarray] = {}
    cases = []
    model.eval()

    def load(name: str) -> Image.Image:
        return Image.open(golden_dir / "images" / name).convert("RGB")

    check_clip_layout(builder, load("move_0.png"))
    for case in golden_cases():
        files = case_image_files(case["messages"])
        clips = [[load(f) for f in clip] for clip in case_clips(case["messages"])]
        enc = builder.encode(case["messages"], [load(f) for f in files], clips)
        prompt = hf_tokenizer.apply_chat_template(
            case["messages"], tokenize=False, add_generation_prompt=True
        )
        if prompt != render_prompt(case["messages"]):
            raise AssertionError(f"chat template rendering differs from transformers for {case['name']}")
        ref = torch_reference(model, builder, enc, MAX_NEW_TOKENS)
        name = case["name"]
        arrays[f"{name}/input_ids"] = np.array(enc.input_ids, dtype=np.int64)
        if enc.pixel_values is not None and enc.image_grid_thw is not None:
            arrays[f"{name}/pixel_values"] = enc.pixel_values
            arrays[f"{name}/image_grid_thw"] = enc.image_grid_thw
        if enc.pixel_values_videos is not None and enc.video_grid_thw is not None:
            arrays[f"{name}/pixel_values_videos"] = enc.pixel_values_videos
            arrays[f"{name}/video_grid_thw"] = enc.video_grid_thw
        arrays[f"{name}/position_ids"] = ref["position_ids"].astype(np.int64)
        arrays[f"{name}/rope_deltas"] = ref["rope_deltas"].astype(np.int64)
        arrays[f"{name}/last_logits"] = ref["last_logits"].astype(np.float32)
        arrays[f"{name}/generated_ids"] = ref["generated_ids"].astype(np.int64)
        reply = builder.tokenizer.decode(ref["generated_ids"].tolist(), skip_special_tokens=True)
        cases.append(
            {
                **case,
                "images": files,
                "prompt": prompt,
                "generated_text": reply,
                "max_new_tokens": MAX_NEW_TOKENS,
            }
        )
    np.savez_compressed(golden_dir / "arrays.npz", **arrays)  # type: ignore[arg-type]  # numpy stub
    (golden_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    (golden_dir / "README.md").write_text(README)
