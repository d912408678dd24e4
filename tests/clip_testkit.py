"""Helpers shared by the CLIP endpoint tests: shapes-world pictures as data URLs and /metrics figures."""

from __future__ import annotations

import base64
import re

import numpy as np
import shapes_world as sw
from service import Service

LABELS = [f"{colour} {kind}" for colour in sw.COLOUR_NAMES for kind in sw.SHAPES]  # 18 labels


def scene_url(scene: sw.Scene) -> str:
    return "data:image/png;base64," + base64.b64encode(sw.encode(sw.render(scene), "PNG")).decode()


def red_circle(seed: int = 5) -> str:
    """One red circle drawn by the shapes world."""
    rng = np.random.default_rng(seed)
    return scene_url(sw.random_scene(rng, n_shapes=1, kinds=("circle",), colours=("red",)))


def two_shapes(
    left: tuple[str, str], right: tuple[str, str], width: int = 320, height: int = 160
) -> sw.Scene:
    """A (colour, kind) shape in each half of a plain picture, each 100 px wide with a margin."""
    boxes = [(20, 30, 120, 130), (width - 120, 30, width - 20, 130)]
    shapes = tuple(
        sw.Shape(kind, colour, box) for (colour, kind), box in zip((left, right), boxes, strict=True)
    )
    return sw.Scene(width, height, (238, 238, 238), shapes, ((0, 0, 0), (0, 0, 0)))


def metric(service: Service, name: str) -> float:
    """One unlabelled sample of /metrics."""
    text = service.http.get("/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))
