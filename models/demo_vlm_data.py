"""Training and evaluation examples for the demo VLM: shapes-world scenes turned into chat turns.

Every example is a user turn (one image or one clip plus a question, in Hugging Face content-part
format) and the short assistant answer. The canonical questions and answers come from `shapes_world`,
so the training targets agree with the evaluation script; paraphrases make other wordings work too.
A question followed by JSON_SUFFIX (the hint hailo-vision adds when a client asks for JSON:
npu_worker/structured.py) or by " Answer in JSON." is answered as a JSON object
(`shapes_world.json_answer`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapes_world as sw
from PIL import Image

# Paraphrases per question kind; the first one is the canonical `shapes_world.QUESTIONS` wording.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "colour": (
        sw.QUESTIONS["colour"],
        "What colour is it?",
        "What color is it?",
        "What colour is the shape?",
        "Which color is the shape?",
        "What is the color of the shape?",
    ),
    "shape": (
        sw.QUESTIONS["shape"],
        "Which shape is shown?",
        "What shape is it?",
        "What kind of shape is this?",
        "What shape is in the image?",
    ),
    "count": (
        sw.QUESTIONS["count"],
        "Count the shapes.",
        "How many shapes are in the image?",
        "How many shapes do you see?",
        "How many objects are there?",
    ),
    "describe": ("Describe the image.", "What is in the image?", "Describe this picture."),
    "motion": (
        sw.CLIP_QUESTIONS["motion"],
        "Which direction does the shape move?",
        "Where does the shape go?",
        "Which way is it moving?",
    ),
    "turn": (
        sw.CLIP_QUESTIONS["turn"],
        "What colour does the shape turn?",
        "What color does it change to?",
        "What color is the shape at the end?",
    ),
}
JSON_SUFFIX = "\nAnswer in JSON."  # canonical: what npu_worker.structured.with_json_hint appends
JSON_SUFFIXES = (JSON_SUFFIX, JSON_SUFFIX, " Answer in JSON.")
# JSON questions: the question asked (canonical first) and the fields of the JSON answer.
JSON_QUESTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "colour": ((sw.QUESTIONS["colour"], "What colour is it?"), ("color",)),
    "shape": ((sw.QUESTIONS["shape"], "What shape is it?"), ("shape",)),
    "count": ((sw.QUESTIONS["count"], "Count the shapes."), ("count",)),
    "both": (("What color and shape is it?", "Which color and shape is the shape?"), ("color", "shape")),
}
YES_NO_TEMPLATE = "Is there a {colour} {kind}? Answer yes or no."
TEXT_ONLY_QUESTIONS: tuple[str, ...] = (
    "Hello!",
    "Hi, who are you?",
    "What can you do?",
    sw.QUESTIONS["colour"],
    sw.QUESTIONS["shape"],
    sw.QUESTIONS["count"],
)
TEXT_ONLY_ANSWER = "Please send an image of shapes."

# Share of each kind in the training mix (the three evaluated kinds dominate; shape is the hardest).
KIND_WEIGHTS: dict[str, float] = {
    "colour": 0.13,
    "shape": 0.2,
    "count": 0.2,
    "yesno": 0.05,
    "describe": 0.05,
    "text": 0.02,
    "json": 0.14,
    "motion": 0.12,
    "turn": 0.09,
}
CLIP_KINDS = ("motion", "turn")
# The easy curriculum start teaches only the three evaluated kinds, mostly shape: it breaks the
# symmetry between the three shapes, which the full distribution alone hardly does.
EASY_KIND_WEIGHTS: dict[str, float] = {"colour": 0.15, "shape": 0.6, "count": 0.25}
ONE_SHAPE_KINDS = ("colour", "shape", "both")


@dataclass(frozen=True)
class Example:
    """One chat turn to learn: the user's message, its images or clip, and the assistant's answer."""

    messages: list[dict[str, Any]]
    images: list[Image.Image]
    answer: str
    kind: str
    videos: tuple[list[Image.Image], ...] = ()


def describe(scene: sw.Scene) -> str:
    """'a red circle and a blue square': the shapes from left to right."""
    parts = [f"a {s.colour} {s.kind}" for s in sorted(scene.shapes, key=lambda s: (s.box[0], s.box[1]))]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def yes_no_question(scene: sw.Scene, rng: np.random.Generator) -> tuple[str, str]:
    """A balanced yes/no question; 'no' cases are near misses (one attribute differs)."""
    present = {(s.colour, s.kind) for s in scene.shapes}
    target = scene.shapes[int(rng.integers(len(scene.shapes)))]
    if rng.random() < 0.5:
        return YES_NO_TEMPLATE.format(colour=target.colour, kind=target.kind), "yes"
    for _ in range(50):
        if rng.random() < 0.5:
            colour, kind = str(rng.choice(sw.COLOUR_NAMES)), target.kind
        else:
            colour, kind = target.colour, str(rng.choice(sw.SHAPES))
        if (colour, kind) not in present:
            return YES_NO_TEMPLATE.format(colour=colour, kind=kind), "no"
    raise RuntimeError("no absent colour/shape pair found")


def draw_scene(rng: np.random.Generator, kind: str, easy: bool) -> sw.Scene:
    """A scene for a question kind; `easy` means a square canvas with large shapes (curriculum start)."""
    n_shapes = 1 if kind in ONE_SHAPE_KINDS else None
    if not easy:
        return sw.random_scene(rng, n_shapes=n_shapes)
    side = int(rng.integers(sw.MIN_SIDE, sw.MAX_SIDE + 1))
    return sw.random_scene(rng, n_shapes=n_shapes, size=(side, side), min_fraction=0.35)


def user_message(question: str, n_images: int, text_first: bool, media: str = "image") -> dict[str, Any]:
    """A user turn in content-part format (`media` "video": the parts are clips)."""
    parts: list[dict[str, Any]] = [{"type": media} for _ in range(n_images)]
    text = [{"type": "text", "text": question}]
    return {"role": "user", "content": text + parts if text_first else parts + text}


def scene_question(rng: np.random.Generator, kind: str, scene: sw.Scene) -> tuple[str, str]:
    """A question of `kind` about `scene` and its right answer."""
    if kind == "yesno":
        return yes_no_question(scene, rng)
    question = str(rng.choice(PARAPHRASES[kind]))
    return question, describe(scene) if kind == "describe" else sw.answer(scene, kind)


def compression_roundtrip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """`shapes_world.roundtrip` (same random draws) minus the PNG encode/decode, which is lossless."""
    is_jpeg = rng.random() < 0.5
    quality = int(rng.integers(70, 96))
    if not is_jpeg:
        return image
    return Image.open(io.BytesIO(sw.encode(image, "JPEG", quality))).convert("RGB")


def clip_example(rng: np.random.Generator, kind: str, question: str | None = None) -> Example:
    """A clip question (kind in CLIP_KINDS); `question` None: a paraphrase at random."""
    scenes, answer = sw.random_clip(rng, kind)
    frames = [compression_roundtrip(sw.render(scene), rng) for scene in scenes]
    text = question or str(rng.choice(PARAPHRASES[kind]))
    message = user_message(text, 1, bool(rng.random() < 0.15), media="video")
    return Example([message], [], answer, kind, (frames,))


def json_example(rng: np.random.Generator, easy: bool, canonical: str | None = None) -> Example:
    """A question answered as JSON; `canonical` names a JSON_QUESTIONS kind asked canonically."""
    base = canonical or str(rng.choice(list(JSON_QUESTIONS)))
    questions, fields = JSON_QUESTIONS[base]
    scene = draw_scene(rng, base, easy)
    image = compression_roundtrip(sw.render(scene), rng)
    suffix = JSON_SUFFIX if canonical else str(rng.choice(JSON_SUFFIXES))
    question = (questions[0] if canonical else str(rng.choice(questions))) + suffix
    text_first = bool(canonical is None and rng.random() < 0.15)
    return Example([user_message(question, 1, text_first)], [image], sw.json_answer(scene, fields), "json")


def make_example(rng: np.random.Generator, kind: str, easy: bool = False) -> Example:
    """One training or evaluation example of a question kind."""
    if kind in CLIP_KINDS:
        return clip_example(rng, kind)
    if kind == "json":
        return json_example(rng, easy)
    if kind == "text":
        question = str(rng.choice(TEXT_ONLY_QUESTIONS))
        return Example([user_message(question, 0, True)], [], TEXT_ONLY_ANSWER, kind)
    scene = draw_scene(rng, kind, easy)
    question, answer = scene_question(rng, kind, scene)
    image = compression_roundtrip(sw.render(scene), rng)
    text_first = bool(rng.random() < 0.15)
    return Example([user_message(question, 1, text_first)], [image], answer, kind)


def canonical_example(rng: np.random.Generator, kind: str) -> Example:
    """An evaluation example with the canonical question wording (what the evaluation script asks):
    kind is one of shapes_world.QUESTIONS or CLIP_QUESTIONS, or "json_<JSON_QUESTIONS kind>"."""
    if kind in CLIP_KINDS:
        return clip_example(rng, kind, sw.CLIP_QUESTIONS[kind])
    if kind.startswith("json_"):
        return json_example(rng, False, kind.removeprefix("json_"))
    scene = draw_scene(rng, kind, easy=False)
    image = compression_roundtrip(sw.render(scene), rng)
    question = sw.QUESTIONS[kind]
    return Example([user_message(question, 1, False)], [image], sw.answer(scene, kind), kind)


def sample_kind(rng: np.random.Generator, easy: bool) -> str:
    table = EASY_KIND_WEIGHTS if easy else KIND_WEIGHTS
    weights = np.array(list(table.values()))
    return str(rng.choice(list(table), p=weights / weights.sum()))


def tokenizer_corpus() -> list[str]:
    """Texts the BPE is trained on: every question, answer and chat-template fragment the demo uses."""
    texts = [q for qs in PARAPHRASES.values() for q in qs] + list(TEXT_ONLY_QUESTIONS) + [TEXT_ONLY_ANSWER]
    texts += ["system\nYou are a helpful assistant.", "user\n", "assistant\n", "Picture 1: ", "Video 1: "]
    texts += [f"a {c} {k}" for c in sw.COLOUR_NAMES for k in sw.SHAPES]
    texts += [YES_NO_TEMPLATE.format(colour=c, kind=k) for c in sw.COLOUR_NAMES for k in sw.SHAPES]
    texts += [*sw.COUNT_WORDS.values(), "yes", "no", "1", "2", "3", " and ", ", ", *sw.DIRECTIONS]
    texts += [
        q + suffix for qs, _ in JSON_QUESTIONS.values() for q in qs for suffix in dict.fromkeys(JSON_SUFFIXES)
    ]
    texts += [f'{{"color": "{c}", "shape": "{k}"}}' for c in sw.COLOUR_NAMES for k in sw.SHAPES]
    texts += [f'{{"count": {n}}}' for n in sw.COUNT_WORDS]
    return texts * 4
