"""What the Qwen2-VL runner needs from config.json and generation_config.json, checked at load.

Handles both layouts: transformers 5 nests the language model's settings in `text_config`, while the
published Qwen2-VL-2B-Instruct config.json has them at the top level; mrope_section sits under
`rope_scaling` or `rope_parameters`. Nothing about one model size is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npu_worker.backend import ModelLoadError
from npu_worker.cpu.model_files import read_json, require_key


@dataclass(frozen=True)
class Qwen2VLConfig:
    num_layers: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    max_position_embeddings: int
    merge_size: int
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    eos_token_ids: frozenset[int]

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> Qwen2VLConfig:
        path = model_dir / "config.json"
        config = read_json(model_dir, "config.json")
        text = config.get("text_config") or config
        if not isinstance(text, dict):
            raise ModelLoadError(f"{path}: text_config should be an object, found {text!r}")
        vision = config.get("vision_config")
        if not isinstance(vision, dict):
            raise ModelLoadError(f"{path}: missing object 'vision_config'")
        hidden = require_key(text, "hidden_size", path)
        heads = require_key(text, "num_attention_heads", path)
        head_dim = text.get("head_dim") or hidden // heads
        _check_mrope_section(text, config, head_dim, path)
        tokens = {
            key: require_key(config if key in config else text, key, path)
            for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        }
        return cls(
            num_layers=require_key(text, "num_hidden_layers", path),
            num_kv_heads=text.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            hidden_size=hidden,
            max_position_embeddings=require_key(text, "max_position_embeddings", path),
            merge_size=require_key(vision, "spatial_merge_size", path),
            eos_token_ids=_eos_token_ids(model_dir, config, text),
            **tokens,
        )


def _check_mrope_section(text: dict[str, Any], config: dict[str, Any], head_dim: int, path: Path) -> None:
    """M-RoPE splits each head's rotary half into (t, h, w) sections; they must cover it exactly."""
    for source in (text, config):
        for key in ("rope_scaling", "rope_parameters"):
            rope = source.get(key)
            section = rope.get("mrope_section") if isinstance(rope, dict) else None
            if section is None:
                continue
            if not (isinstance(section, list) and len(section) == 3 and sum(section) * 2 == head_dim):
                raise ModelLoadError(
                    f"{path}: {key}.mrope_section {section!r} should be 3 numbers summing to head_dim/2 = "
                    f"{head_dim // 2}"
                )
            return
    raise ModelLoadError(f"{path}: no mrope_section under rope_scaling or rope_parameters")


def _eos_token_ids(model_dir: Path, config: dict[str, Any], text: dict[str, Any]) -> frozenset[int]:
    """Stop token ids: generation_config.json's eos_token_id (int or list), else config.json's."""
    generation = read_json(model_dir, "generation_config.json", required=False)
    for source in (generation, config, text):
        value = source.get("eos_token_id")
        ids = [value] if isinstance(value, int) else value
        if isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids):
            return frozenset(ids)
    raise ModelLoadError(f"{model_dir / 'generation_config.json'}: no eos_token_id (int or list of ints)")
