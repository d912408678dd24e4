"""Training data for the demo CLIP: shapes-world images and the captions that describe them.

Captions are what a user would type as zero-shot prompts: the five hailo-apps templates around
"{colour} {shape}", sometimes a shape or a colour alone, and for multi-shape scenes either all shapes
("a photo of a red circle and a blue square.") or one of them. Every caption carries the mentions it
makes, so the training loss can tell which captions in a batch are true of which images (a caption
naming one shape is true of every image that holds such a shape), and later multi-label scoring,
where each prompt is scored on its own, is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapes_world as sw
from PIL import Image

from npu_worker.cpu.clip_image import ClipImageConfig, resize_uint8

TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of my {}.",
    "a photo of a big {}.",
    "a photo of a small {}.",
)
LIST_TEMPLATES: tuple[str, ...] = ("a photo of {}.", "{}.")
ZERO_SHOT_PROMPT = "a photo of a {}"  # the evaluation's plain prompt (no ensemble, no full stop)
LABELS: tuple[tuple[str, str], ...] = tuple((c, s) for c in sw.COLOUR_NAMES for s in sw.SHAPES)
MAX_MENTIONS = 3

# A mention is (colour or None, shape or None); it is encoded as the bitmask of the (colour, shape)
# labels it accepts, so "is this caption true of this image" is a vectorised AND.
Mention = tuple[str | None, str | None]


def label_bit(colour: str, shape: str) -> int:
    return 1 << LABELS.index((colour, shape))


def mention_mask(mention: Mention) -> int:
    colour, shape = mention
    return sum(
        label_bit(c, s)
        for c, s in LABELS
        if (colour is None or c == colour) and (shape is None or s == shape)
    )


def scene_mask(scene: sw.Scene) -> int:
    mask = 0
    for shape in scene.shapes:
        mask |= label_bit(shape.colour, shape.kind)
    return mask


def label_text(colour: str, shape: str) -> str:
    return f"{colour} {shape}"


def describe(mention: Mention) -> str:
    colour, shape = mention
    return f"{colour or ''} {shape or 'shape'}".strip()


def with_article(phrase: str) -> str:
    return f"an {phrase}" if phrase[0] in "aeiou" else f"a {phrase}"


@dataclass(frozen=True)
class Caption:
    text: str
    mentions: tuple[Mention, ...]

    def masks(self) -> list[int]:
        """Mention bitmasks padded with 0 (no constraint) to MAX_MENTIONS."""
        masks = [mention_mask(m) for m in self.mentions]
        return masks + [0] * (MAX_MENTIONS - len(masks))


def single_caption(mention: Mention, rng: np.random.Generator) -> str:
    text = TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(describe(mention))
    return text if rng.random() < 0.5 else text.rstrip(".")


def partial_mention(colour: str, shape: str, rng: np.random.Generator) -> Mention:
    """Mostly colour and shape; sometimes the shape alone or the colour alone ("a red shape")."""
    draw = rng.random()
    if draw < 0.8:
        return colour, shape
    return (None, shape) if draw < 0.9 else (colour, None)


def random_caption(scene: sw.Scene, rng: np.random.Generator) -> Caption:
    shapes = list(scene.shapes)
    if len(shapes) > 1 and rng.random() < 0.6:
        order = rng.permutation(len(shapes))
        mentions = tuple((shapes[i].colour, shapes[i].kind) for i in order)
        phrases = [with_article(describe(m)) for m in mentions]
        listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        text = LIST_TEMPLATES[int(rng.integers(len(LIST_TEMPLATES)))].format(listed)
        return Caption(text if rng.random() < 0.5 else text.rstrip("."), mentions)
    chosen = shapes[int(rng.integers(len(shapes)))]
    mention = partial_mention(chosen.colour, chosen.kind, rng)
    return Caption(single_caption(mention, rng), (mention,))


def swapped_caption(scene: sw.Scene, rng: np.random.Generator) -> Caption | None:
    """A hard negative for a multi-shape scene: one shape's colour on another shape's kind.

    Contrastive training alone learns CLIP's "bag of attributes" (a red square and a blue circle
    also match "a red circle"); these captions, false of the scene, teach which colour goes with
    which shape. None when every such swap is also in the scene.
    """
    present = {(s.colour, s.kind) for s in scene.shapes}
    swaps = sorted({(a.colour, b.kind) for a in scene.shapes for b in scene.shapes} - present)
    if not swaps:
        return None
    mention = swaps[int(rng.integers(len(swaps)))]
    return Caption(single_caption(mention, rng), (mention,))


def tokenizer_corpus() -> list[str]:
    """Every word and punctuation the captions can use, in the forms they take."""
    rng = np.random.default_rng(0)
    texts = [
        t.format(describe(m)) for t in TEMPLATES for c, s in LABELS for m in ((c, s), (None, s), (c, None))
    ]
    for _ in range(2000):
        scene = sw.random_scene(rng, size=(200, 200))
        texts.append(random_caption(scene, rng).text)
    return texts


def truth_matrix(scene_masks: np.ndarray, caption_masks: np.ndarray) -> np.ndarray:
    """bool [images, captions]: caption j is true of image i (each mention matched by some shape)."""
    hits = (scene_masks[:, None, None] & caption_masks[None, :, :]) != 0
    return np.all(hits | (caption_masks[None, :, :] == 0), axis=2)


@dataclass
class ImagePool:
    """Pre-rendered, pre-resized training images with their scenes."""

    pixels: np.ndarray  # uint8 [N, S, S, 3]
    scenes: list[sw.Scene]
    masks: np.ndarray  # int64 [N] label bitmasks


def scene_distribution(rng: np.random.Generator, easy: bool, n_shapes: int | None = None) -> sw.Scene:
    """A scene of the full shapes world, or an easy one (square canvas, large shapes) for warm-up."""
    if easy:
        side = int(rng.integers(160, 400))
        return sw.random_scene(rng, n_shapes=n_shapes or 1, size=(side, side), min_fraction=0.4)
    if n_shapes is None:
        n_shapes = 1 if rng.random() < 0.5 else int(rng.integers(2, 4))
    return sw.random_scene(rng, n_shapes=n_shapes)


def render_for_model(scene: sw.Scene, config: ClipImageConfig, rng: np.random.Generator | None) -> np.ndarray:
    """The scene as the model sees it: drawn, JPEG/PNG round-tripped half the time, resized."""
    image: Image.Image = sw.render(scene)
    if rng is not None and rng.random() < 0.5:
        image = sw.roundtrip(image, rng)
    return resize_uint8(np.asarray(image), config)


def make_pool(
    count: int, seed: int, config: ClipImageConfig, easy: bool = False, n_shapes: int | None = None
) -> ImagePool:
    rng = np.random.default_rng(seed)
    height, width = config.output_size
    pixels = np.empty((count, height, width, 3), dtype=np.uint8)
    scenes = []
    for i in range(count):
        scene = scene_distribution(rng, easy, n_shapes)
        pixels[i] = render_for_model(scene, config, rng)
        scenes.append(scene)
    masks = np.array([scene_mask(s) for s in scenes], dtype=np.int64)
    return ImagePool(pixels, scenes, masks)
