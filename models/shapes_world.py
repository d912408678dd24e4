"""The *shapes world*: the synthetic images the demo models are trained, evaluated and tested on.

One to three shapes (circle, square, triangle) in six colours on a light plain background, and short
clips of one shape that moves across the frame or turns another colour. It needs only numpy and
Pillow, so the training script (torch), the evaluation script and the test suite (no torch) all draw
from the same world and agree on the right answers.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 205, 20),
    "purple": (135, 55, 180),
    "orange": (245, 130, 20),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
COUNT_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three"}

MIN_SIDE, MAX_SIDE = 128, 640
MIN_SHAPE_FRACTION = 0.2  # each shape spans at least this fraction of the image's short side


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), in pixels


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    background: tuple[int, int, int]
    shapes: tuple[Shape, ...]
    fill_jitter: tuple[tuple[int, int, int], ...]  # per-shape RGB offset from the nominal colour


def _boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int) -> bool:
    return not (
        a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1]
    )


def random_scene(
    rng: np.random.Generator,
    n_shapes: int | None = None,
    size: tuple[int, int] | None = None,
    min_fraction: float = MIN_SHAPE_FRACTION,
    max_fraction: float | None = None,
    kinds: tuple[str, ...] = SHAPES,
    colours: tuple[str, ...] = COLOUR_NAMES,
) -> Scene:
    """Draw a random scene; shapes never overlap, so counting has one right answer."""
    n = int(rng.integers(1, 4)) if n_shapes is None else n_shapes
    if not 1 <= n <= 3:
        raise ValueError(f"n_shapes must be 1..3, got {n}")
    if size is None:
        width, height = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    else:
        width, height = size
    short = min(width, height)
    upper = max_fraction if max_fraction is not None else (0.6 if n == 1 else 0.4 if n == 2 else 0.32)
    upper = max(upper, min_fraction)
    margin = max(2, short // 40)
    background = tuple(int(v) for v in np.clip(rng.integers(215, 251) + rng.integers(-10, 11, 3), 200, 255))
    for _attempt in range(200):
        shapes: list[Shape] = []
        for _ in range(n):
            side = round(short * rng.uniform(min_fraction, upper))
            side = max(side, int(np.ceil(short * min_fraction)))
            for _try in range(50):
                x0 = int(rng.integers(0, width - side + 1))
                y0 = int(rng.integers(0, height - side + 1))
                box = (x0, y0, x0 + side, y0 + side)
                if all(not _boxes_overlap(box, s.box, margin) for s in shapes):
                    shapes.append(
                        Shape(kind=str(rng.choice(kinds)), colour=str(rng.choice(colours)), box=box)
                    )
                    break
        if len(shapes) == n:
            jitter = tuple(tuple(int(v) for v in rng.integers(-14, 15, 3)) for _ in shapes)
            return Scene(width, height, background, tuple(shapes), jitter)  # type: ignore[arg-type]
    raise RuntimeError(f"could not place {n} shapes on {width}x{height}")


def render(scene: Scene) -> Image.Image:
    """Draw the scene as an RGB image."""
    image = Image.new("RGB", (scene.width, scene.height), scene.background)
    draw = ImageDraw.Draw(image)
    for shape, jitter in zip(scene.shapes, scene.fill_jitter, strict=True):
        fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[shape.colour], jitter, strict=True))
        x0, y0, x1, y1 = shape.box
        if shape.kind == "circle":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif shape.kind == "square":
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
        elif shape.kind == "triangle":
            draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=fill)
        else:
            raise ValueError(f"unknown shape {shape.kind!r}")
    return image


def encode(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
    """The image as JPEG or PNG file bytes (the two formats the world is saved in)."""
    buffer = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG"):
        image.save(buffer, format="JPEG", quality=quality)
    elif fmt.upper() == "PNG":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(f"unsupported format {fmt!r}")
    return buffer.getvalue()


def roundtrip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Save as JPEG or PNG at random and load back, so models see real compression artefacts."""
    fmt = "JPEG" if rng.random() < 0.5 else "PNG"
    quality = int(rng.integers(70, 96))
    return Image.open(io.BytesIO(encode(image, fmt, quality))).convert("RGB")


# The three question kinds of the demo VLM, with the canonical wording the evaluation uses.
QUESTIONS: dict[str, str] = {
    "colour": "What color is the shape?",
    "shape": "What shape is this?",
    "count": "How many shapes are there?",
}


def answer(scene: Scene, kind: str) -> str:
    """The right short answer to a question kind about a scene (colour and shape: one-shape scenes)."""
    if kind == "count":
        return COUNT_WORDS[len(scene.shapes)]
    if len(scene.shapes) != 1:
        raise ValueError(f"{kind!r} questions are asked about one-shape scenes only")
    return scene.shapes[0].colour if kind == "colour" else scene.shapes[0].kind


def is_correct(reply: str, expected: str) -> bool:
    """Whether a model's reply states the expected answer (digits count for numbers)."""
    words = reply.lower().replace(".", " ").replace(",", " ").split()
    if expected in COUNT_WORDS.values():
        digit = str(next(k for k, v in COUNT_WORDS.items() if v == expected))
        return expected in words or digit in words
    return expected in words


def json_answer(scene: Scene, fields: tuple[str, ...]) -> str:
    """The answer as a JSON object, e.g. {"color": "red", "shape": "circle"} or {"count": 2}."""
    values: dict[str, str | int] = {}
    for field in fields:
        if field == "count":
            values["count"] = len(scene.shapes)
        else:
            values[field] = answer(scene, "colour" if field == "color" else field)
    return json.dumps(values)


def json_correct(reply: str, expected: str) -> bool:
    """Whether a reply is a JSON object with exactly the expected fields and values."""
    try:
        return bool(json.loads(reply) == json.loads(expected))
    except ValueError:
        return False


# --- clips ----------------------------------------------------------------------------------------

CLIP_FRAMES = 4
CLIP_SIDE = 112  # the demo VLM sees 112x112 frames as they are (8x8 patches, no resizing)
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# The clip question kinds of the demo VLM, with the canonical wording the evaluation uses.
CLIP_QUESTIONS: dict[str, str] = {
    "motion": "Which way does the shape move?",
    "turn": "What color does the shape turn?",
}


def random_clip(
    rng: np.random.Generator, kind: str, frames: int = CLIP_FRAMES, side: int = CLIP_SIDE
) -> tuple[list[Scene], str]:
    """A clip of one shape and the right answer to its question kind.

    motion: the shape crosses the frame in one of DIRECTIONS (answer: the direction); turn: the shape
    stays and has one colour for the first half of the frames and another for the rest (answer: the
    last colour).
    """
    first = random_scene(rng, n_shapes=1, size=(side, side), min_fraction=0.3, max_fraction=0.4)
    shape = first.shapes[0]
    if kind == "turn":
        other = str(rng.choice([c for c in COLOUR_NAMES if c != shape.colour]))
        later = replace(first, shapes=(replace(shape, colour=other),))
        return [first if i < frames // 2 else later for i in range(frames)], other
    if kind != "motion":
        raise ValueError(f"unknown clip kind {kind!r}")
    direction = str(rng.choice(DIRECTIONS))
    size = shape.box[2] - shape.box[0]
    travel = np.linspace(0, side - size, frames).round().astype(int)
    if direction in ("left", "up"):
        travel = travel[::-1]
    scenes = []
    for offset in travel:
        x0, y0 = (
            (int(offset), shape.box[1]) if direction in ("left", "right") else (shape.box[0], int(offset))
        )
        moved = replace(shape, box=(x0, y0, x0 + size, y0 + size))
        scenes.append(replace(first, shapes=(moved,)))
    return scenes, direction
