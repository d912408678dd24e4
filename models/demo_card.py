"""Write models/demo/README.md, the demo models' card, from what the scripts measured.

Everything on the card is read from files the make and evaluate scripts wrote
(`training_report.json`, `evaluation.json`) or from the model files themselves (sizes, sha256), so
the card cannot drift from the committed models. Runs without torch.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "models" / "demo"
REPORTS = ("training_report.json", "evaluation.json")

CARD_INTRO = """# Demo models

Two small models the project makes itself, so that hailo-vision runs - and is tested for real - on
any machine, with no model hub and no NPU. They know only the *shapes world*: one to three circles,
squares or triangles in red, green, blue, yellow, purple or orange on a light plain background.
`make demo-models` remakes both from scratch with fixed seeds (torch and transformers live in
`.venv-demo` only; neither the service nor the tests need them) and rewrites this card;
`make demo-eval` re-measures the committed models. Multi-threaded CPU training is not bit-for-bit
reproducible, so a remake gives models of the same quality, not the same bytes.
"""

VLM_INTRO = """## qwen2-vl-demo: a tiny Qwen2-VL

transformers' `Qwen2VLForConditionalGeneration` with a tiny configuration, trained with torch on the
CPU on the shapes world (`models/shapes_world.py`) and exported to the layout of
`onnx-community/Qwen2-VL-2B-Instruct` (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
`onnx/decoder_model_merged.onnx`) by `models/make_demo_vlm.py`. Its tokenizer is a byte-level BPE
trained on the training texts, with Qwen's special tokens and Qwen2-VL's chat template.

Besides pictures it knows two kinds of clip (four 112x112 frames, Qwen2-VL's video path: two temporal
patches of two frames each): a shape that crosses the frame ("Which way does the shape move?": left,
right, up or down) and a shape that turns another colour half-way ("What color does the shape turn?":
the last colour). It also answers in JSON when the question is followed by "Answer in JSON." on a
new line - the hint hailo-vision adds when a client asks for structured output
(npu_worker/structured.py) - or after a space: "What color and shape is it?" gives
`{"color": "red", "shape": "circle"}` (one-shape pictures), "How many shapes are there?" gives
`{"count": 2}`, and "What color is the shape?" or "What shape is this?" give `{"color": ...}` or
`{"shape": ...}`. Below, `\\n` is that new line, and a JSON answer counts as right when it parses to
exactly the expected object (asked without constraints: with structured output the CPU backend also
constrains every token to the schema). Before the retrain that added clips and JSON answers (issue
17; 5155 steps, 34 minutes of training then), the model scored colour 100.0 %, shape 98.7 % and
count 97.3 % on the same held-out images; the table gives it after.
"""

# Targets of the questions added with clips and JSON answers (issue 17): well above chance (a quarter
# for the direction, a sixth for the colour), and a JSON answer as good as a plain one.
NEW_TARGETS = {"motion": 80, "turn": 90, "json_both": 85, "json_count": 80}

CLIP_INTRO = """## clip-demo: a tiny CLIP

transformers' `CLIPModel` with tiny text and vision towers, trained contrastively with torch on the
CPU on shapes-world images and captions, exported to optimum's CLIP layout
(`onnx/vision_model.onnx` -> image_embeds, `onnx/text_model.onnx` -> text_embeds) by
`models/make_demo_clip.py`. `config.json` carries the trained `logit_scale`.
"""


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _files(model_dir: Path) -> list[tuple[str, int, str]]:
    rows = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name not in REPORTS):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        rows.append((str(path.relative_to(model_dir)), path.stat().st_size, digest))
    return rows


def _pct(value: Any) -> str:
    return f"{100 * float(value):.1f} %" if isinstance(value, (int, float)) else "n/a"


def _vlm_section(model_dir: Path) -> list[str]:
    train, evaluation = (_json(model_dir / name) for name in REPORTS)
    config = train.get("config", {})
    lines = [
        *VLM_INTRO.splitlines(),
        "",
        f"- Text: {config.get('text', 'n/a')}; vision: {config.get('vision', 'n/a')}; "
        f"vocabulary {config.get('vocab_size', 'n/a')}",
        f"- Parameters: {train.get('parameters', 'n/a'):,}"
        if isinstance(train.get("parameters"), int)
        else "- Parameters: n/a",
        f"- Image pixels: {config.get('pixels', 'n/a')}",
        f"- Seeds: {train.get('seeds', 'n/a')}",
        f"- Training: {train.get('steps_done', 'n/a')} steps, {train.get('train_minutes', 'n/a')} minutes of "
        f"training ({train.get('total_wall_minutes', 'n/a')} minutes wall in all) on 2 CPU cores, one torch "
        f"thread; CPU time {train.get('train_cpu_minutes', 'n/a')} minutes of training "
        f"({train.get('total_cpu_minutes', 'n/a')} in all)",
        f"- ONNX vs torch, largest logit difference: {train.get('onnx_vs_torch_max_logit_diff', 'n/a')}",
        f"- Versions: {train.get('versions', 'n/a')}",
        "",
    ]
    results = evaluation.get("results", {})
    if results:
        lines += [
            "Held-out evaluation through the product's ONNX runner (`models/evaluate_demo_vlm.py`): "
            f"{evaluation.get('n_per_kind')} freshly drawn images per question, "
            f"seed {evaluation.get('seed')}, greedy decoding.",
            "",
            "| question | accuracy | target | mean answer tokens | ended by end-of-sequence |",
            "|---|---|---|---|---|",
        ]
        targets = {"colour": "95 %", "shape": "90 %", "count": "80 %"}
        targets |= {kind: f"{value} %" for kind, value in NEW_TARGETS.items()}
        for kind, result in results.items():
            question = evaluation.get("questions", {}).get(kind, kind).replace("\n", " `\\n` ")
            lines.append(
                f"| {question} | {_pct(result.get('accuracy'))} | {targets.get(kind, '')} | "
                f"{result.get('mean_answer_tokens', 0):.2f} | {_pct(result.get('finished_by_eos'))} |"
            )
        lines.append("")
    return lines


def _clip_section(model_dir: Path) -> list[str]:
    train, evaluation = (_json(model_dir / name) for name in REPORTS)
    get = train.get
    lines = [
        *CLIP_INTRO.splitlines(),
        "",
        f"- Parameters: {get('parameters', 'n/a')}; image size {get('image_size', 'n/a')} px; "
        f"embedding dimension {get('projection_dim', 'n/a')}; vocabulary {get('vocab_size', 'n/a')}",
        f"- Settings and seeds: {get('settings', 'n/a')}",
        f"- Training: {get('steps_done', 'n/a')} steps, {get('training_minutes', 'n/a')} minutes "
        "on 2 CPU cores",
        "",
    ]
    one = evaluation.get("one_shape", {})
    if one:
        lines += [
            "Held-out zero-shot evaluation through the product's ONNX runner "
            f"(`models/evaluate_demo_clip.py`): {one.get('images')} fresh one-shape images, "
            f"seed {evaluation.get('seed')}, top-1 over the 18 prompts "
            '"a photo of a {colour} {shape}" (target 95 %).',
            "",
            "| prompts | top-1 | colour right | shape right |",
            "|---|---|---|---|",
            f"| as written | {_pct(one.get('top1_plain'))} | {_pct(one.get('colour_plain'))} | "
            f"{_pct(one.get('shape_plain'))} |",
            f"| five-template ensemble | {_pct(one.get('top1_ensemble'))} | "
            f"{_pct(one.get('colour_ensemble'))} | {_pct(one.get('shape_ensemble'))} |",
            "",
        ]
    return lines


def render() -> str:
    lines = [*CARD_INTRO.splitlines(), ""]
    lines += _vlm_section(DEMO / "qwen2-vl-demo")
    lines += _clip_section(DEMO / "clip-demo")
    total = 0
    lines += ["## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    for name in ("qwen2-vl-demo", "clip-demo"):
        for relative, size, digest in _files(DEMO / name):
            total += size
            lines.append(f"| {name}/{relative} | {size:,} | `{digest}` |")
    lines += ["", f"Total: {total / 2**20:.1f} MiB.", ""]
    return "\n".join(lines)


def main() -> int:
    (DEMO / "README.md").write_text(render())
    print(f"wrote {DEMO / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
