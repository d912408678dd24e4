"""Image intake: every accepted format decodes to RGB, everything else is refused with the right error."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from api.errors import APIError
from api.image_intake import (
    SMALL_IMAGE_BYTES,
    ImageInfo,
    ImageLimits,
    decode_image,
    decode_opened,
    image_info,
    is_small,
    open_image,
)

LIMITS = ImageLimits()
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def halves(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    """An RGB image whose left half is `left` and right half `right`."""
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def refused(data: bytes, limits: ImageLimits = LIMITS, **kwargs: object) -> APIError:
    with pytest.raises(APIError) as caught:
        decode_image(data, limits, **kwargs)  # type: ignore[arg-type]
    return caught.value


def assert_rgb_array(pixels: np.ndarray, height: int, width: int) -> None:
    assert pixels.shape == (height, width, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous


@pytest.mark.parametrize(
    ("fmt", "options", "exact"),
    [
        ("PNG", {}, True),
        ("BMP", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("GIF", {}, True),
        ("JPEG", {"quality": 95}, False),
    ],
)
def test_every_accepted_format_decodes_to_the_same_pixels(fmt: str, options: dict, exact: bool) -> None:
    data = encode(halves((32, 16), RED, BLUE), fmt, **options)
    pixels = decode_image(data, LIMITS)
    assert_rgb_array(pixels, 16, 32)
    tolerance = 0 if exact else 12
    assert np.abs(pixels[8, 4].astype(int) - RED).max() <= tolerance
    assert np.abs(pixels[8, 28].astype(int) - BLUE).max() <= tolerance


def test_the_declared_format_is_the_one_detected_from_content() -> None:
    data = encode(halves((10, 6), RED, BLUE), "WEBP", lossless=True)
    assert image_info(data, LIMITS) == ImageInfo("WebP", 10, 6, len(data))
    assert image_info(encode(Image.new("RGB", (3, 2)), "BMP"), LIMITS).format == "BMP"


def test_multi_frame_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, (0, 255, 0), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    pixels = decode_image(data, LIMITS)
    assert (pixels == RED).all()


def test_multi_picture_jpeg_from_cameras_is_a_jpeg() -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert image_info(data, LIMITS).format == "JPEG"
    pixels = decode_image(data, LIMITS)
    assert np.abs(pixels[8, 8].astype(int) - RED).max() <= 12


def test_png_alpha_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (4, 2), (255, 0, 0, 255))
    image.putpixel((3, 1), (0, 0, 255, 0))  # fully transparent blue
    image.putpixel((2, 1), (0, 0, 0, 128))  # half-transparent black
    pixels = decode_image(encode(image, "PNG"), LIMITS)
    assert tuple(pixels[0, 0]) == RED
    assert tuple(pixels[1, 3]) == WHITE
    assert np.abs(pixels[1, 2].astype(int) - 127).max() <= 1


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_becomes_white(fmt: str) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.paste(1, (2, 0, 4, 4))
    pixels = decode_image(encode(image, fmt, transparency=1), LIMITS)
    assert tuple(pixels[0, 0]) == RED
    assert tuple(pixels[0, 3]) == WHITE


def test_16_bit_png_is_scaled_to_8_bits() -> None:
    wide = np.array([[0, 32896, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(wide), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = decode_image(data, LIMITS)
    assert pixels[0, :, 0].tolist() == [0, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    red, green, blue = decode_image(data, LIMITS)[8, 8].astype(int)
    assert red > 230 and green < 30 and blue < 30


def rotated_jpeg(size: tuple[int, int], orientation: int) -> bytes:
    """Stored left red / right blue, with an EXIF orientation tag saying how to turn it for display."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(size, RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_turns_the_pixels() -> None:
    # Orientation 6: the stored image must be turned 90 degrees clockwise, so left becomes top.
    pixels = decode_image(rotated_jpeg((40, 20), 6), LIMITS)
    assert_rgb_array(pixels, 40, 20)
    assert np.abs(pixels[5, 10].astype(int) - RED).max() <= 12
    assert np.abs(pixels[35, 10].astype(int) - BLUE).max() <= 12


def test_draft_decoding_also_applies_the_orientation() -> None:
    pixels = decode_image(rotated_jpeg((800, 400), 8), LIMITS, 20_000)
    # 1/4 scale keeps 200x100 = 20,000 pixels; orientation 8 (90 degrees anticlockwise): left -> bottom.
    assert_rgb_array(pixels, 200, 100)
    assert np.abs(pixels[190, 50].astype(int) - RED).max() <= 12
    assert np.abs(pixels[10, 50].astype(int) - BLUE).max() <= 12


def test_jpeg_is_decoded_at_the_smallest_scale_that_keeps_the_target() -> None:
    data = encode(halves((1600, 1200), RED, BLUE), "JPEG", quality=90)
    # 1/4 gives 400x300 = 120,000 >= 100,000; 1/8 would give 30,000.
    assert_rgb_array(decode_image(data, LIMITS, 100_000), 300, 400)
    assert_rgb_array(decode_image(data, LIMITS, 30_000), 150, 200)
    assert_rgb_array(decode_image(data, LIMITS, 480_001), 1200, 1600)  # 1/2 would fall short by one
    assert_rgb_array(decode_image(data, LIMITS, None), 1200, 1600)


def test_a_tiny_target_never_empties_a_tiny_jpeg() -> None:
    data = encode(Image.new("RGB", (4, 3), RED), "JPEG")
    # 1/8 would leave no pixel: the scale asked for is capped at the image's size (1/2 here).
    assert_rgb_array(decode_image(data, LIMITS, 1), 2, 2)


def test_min_side_keeps_the_short_side_for_clip() -> None:
    data = encode(halves((1600, 400), RED, BLUE), "JPEG", quality=90)
    # 1/8 gives 200x50 = 10,000 pixels but a 50-pixel short side; 1/4 keeps 100.
    assert_rgb_array(decode_image(data, LIMITS, 10_000), 50, 200)
    assert_rgb_array(decode_image(data, LIMITS, 10_000, min_side=100), 100, 400)


def test_other_formats_are_reduced_keeping_twice_the_target() -> None:
    data = encode(halves((1200, 900), RED, BLUE), "PNG")
    pixels = decode_image(data, LIMITS, 10_000)
    # The largest integer factor keeping >= 20,000 pixels is 7: 172x129 = 22,188.
    assert_rgb_array(pixels, 129, 172)
    assert tuple(pixels[64, 10]) == RED and tuple(pixels[64, 160]) == BLUE


def test_images_smaller_than_the_target_are_never_enlarged() -> None:
    data = encode(halves((64, 48), RED, BLUE), "PNG")
    assert_rgb_array(decode_image(data, LIMITS, 1_003_520), 48, 64)


@pytest.mark.parametrize("size", [(1, 1), (10_000, 200), (200, 10_000)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_tiny_and_extreme_aspect_images_decode(size: tuple[int, int], fmt: str) -> None:
    data = encode(Image.new("RGB", size, RED), fmt)
    assert_rgb_array(decode_image(data, LIMITS), size[1], size[0])
    reduced = decode_image(data, LIMITS, 12_544)
    assert reduced.shape[0] * reduced.shape[1] >= min(12_544, size[0] * size[1])


@pytest.mark.parametrize(("fmt", "name"), [("TIFF", "TIFF"), ("ICO", "ICO"), ("PPM", "PPM"), ("PDF", "PDF")])
def test_other_image_types_are_refused_with_415_naming_them(fmt: str, name: str) -> None:
    error = refused(encode(Image.new("RGB", (16, 16), RED), fmt))
    assert (error.status, error.code) == (415, "unsupported_image_type")
    assert name in error.message and "JPEG, PNG, WebP, GIF, BMP" in error.message


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"Hello, this is a text file, not a picture.\n", "text"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    ],
)
def test_non_images_pillow_cannot_open_are_named_in_the_415(data: bytes, name: str) -> None:
    error = refused(data)
    assert (error.status, error.code) == (415, "unsupported_image_type")
    assert f"type {name}" in error.message


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header claims this size, with one row's worth of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(1 + 3 * width))
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [8_000, 10_000, 30_000])
def test_decompression_bombs_are_refused_from_the_header(side: int) -> None:
    # 8,000^2 is over our limit only; 10,000^2 also trips Pillow's warning, 30,000^2 Pillow's error.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # even a warning turned into an exception must become a 413
        data = png_header_only(side, side)
        error = refused(data)
    assert len(data) < 1000
    assert (error.status, error.code) == (413, "image_too_large")
    assert "pixels" in error.message


def test_a_real_compressible_png_over_the_pixel_limit_is_refused() -> None:
    data = encode(Image.new("L", (3000, 2000)), "PNG")
    assert len(data) < 20_000
    error = refused(data, ImageLimits(max_source_pixels=5_000_000))
    assert (error.status, error.code) == (413, "image_too_large")
    assert "3000x2000" in error.message and "5000000" in error.message


def test_files_over_the_byte_limit_are_refused_before_decoding() -> None:
    data = encode(Image.new("RGB", (64, 64), RED), "BMP")
    error = refused(data, ImageLimits(max_bytes=1000))
    assert (error.status, error.code) == (413, "image_too_large")
    assert "1000 bytes" in error.message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_truncated_files_are_invalid_images(fmt: str) -> None:
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy.convert("P") if fmt == "GIF" else noisy, fmt)
    for cut in (len(data) // 2, 24):
        error = refused(data[:cut])
        assert (error.status, error.code) == (400, "invalid_image"), (cut, error.message)
        assert "corrupt" in error.message


@pytest.mark.parametrize("data", [b"", bytes(range(256)) * 4, b"\xff\xd8\xff" + bytes(100)])
def test_garbage_is_an_invalid_image(data: bytes) -> None:
    error = refused(data)
    assert (error.status, error.code) == (400, "invalid_image")


def test_errors_name_the_request_field() -> None:
    error = refused(b"garbage\x00", param="messages[0].content[1].image_url")
    assert error.param == "messages[0].content[1].image_url"


def test_only_small_crops_count_as_small_enough_to_decode_on_the_event_loop() -> None:
    crop = encode(halves((96, 96), RED, BLUE), "PNG")
    assert is_small(open_image(crop, LIMITS), len(crop))
    # A flat 2000x2000 PNG compresses to a few KiB, yet decoding it is 4 MP of work: the header decides.
    flat = encode(Image.new("RGB", (2000, 2000), WHITE), "PNG")
    assert len(flat) < SMALL_IMAGE_BYTES and not is_small(open_image(flat, LIMITS), len(flat))
    noisy = np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    dense = encode(Image.fromarray(noisy), "PNG")  # few pixels, many bytes
    assert len(dense) > SMALL_IMAGE_BYTES and not is_small(open_image(dense, LIMITS), len(dense))


def test_an_opened_header_decodes_like_the_whole_file() -> None:
    data = encode(halves((300, 200), RED, BLUE), "JPEG", quality=95)
    opened = decode_opened(open_image(data, LIMITS), LIMITS, 10_000)
    np.testing.assert_array_equal(opened, decode_image(data, LIMITS, 10_000))
