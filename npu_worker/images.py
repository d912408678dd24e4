"""Turn any image the service may meet into the RGB uint8 array every backend expects.

Both the API's image intake (decoded files) and the runners (arrays handed to them directly) go
through here, so odd inputs - CMYK, palette with transparency, 16-bit, greyscale, alpha - are
converted the same way everywhere: alpha is composited over white, never dropped to black.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

WHITE = (255, 255, 255)


def to_rgb_image(image: Image.Image) -> Image.Image:
    """An RGB copy of `image` in any Pillow mode; transparency is flattened onto white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or wide.max() > 255 else 255.0
        image = Image.fromarray(np.clip(wide / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A C-contiguous (height, width, 3) uint8 array from a Pillow image or an array.

    Arrays may be (h, w) greyscale, (h, w, 1), (h, w, 3) or (h, w, 4) with alpha, in uint8,
    uint16 (scaled down from 16 bits) or float in [0, 1].
    """
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(to_rgb_image(image), dtype=np.uint8))
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"an image array must be (h, w) or (h, w, 1|3|4); got {array.shape}")
    if array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 + 32767) // 65535
    elif np.issubdtype(array.dtype, np.floating):
        array = np.clip(array * 255.0 + 0.5, 0, 255)
    array = array.astype(np.uint8, copy=False)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.uint16)
        array = ((array[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(array)
