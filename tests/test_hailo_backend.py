"""HailoBackend in this process on the HailoRT double: CLIP through InferModel, load errors, a busy
or hung device, and feature detection across HailoRT versions.

The reference for embeddings is the ONNX CLIP runner on the same demo model; the double's encoder
quantises its output to uint8 like the real HEF, hence the tolerance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import shapes_world as sw
from hailo_double import DEMO_CLIP_DIR, DEMO_VLM_DIR, import_version
from hailo_double_tools import HeldDevice, journal, make_clip_hef

from npu_worker.backend import (
    DeviceBusyError,
    DeviceFailedError,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelLoadError,
    SamplingParams,
    TextPart,
)
from npu_worker.config import ClipConfig, Config, HailoConfig, ModelConfig, ResourcesConfig
from npu_worker.cpu.clip_runner import ClipRunner
from npu_worker.hailo.backend import HailoBackend
from npu_worker.hailo.features import detect_features

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]
COSINE_FLOOR = 0.995  # uint8 codes of a 64-dimensional embedding


def config(vlm_hef: Path, clip_hef: Path | None, **hailo: object) -> Config:
    return Config(
        backend="hailo",
        model=ModelConfig(path=str(DEMO_VLM_DIR), warmup=False),
        clip=ClipConfig(enabled=clip_hef is not None, path=str(DEMO_CLIP_DIR)),
        resources=ResourcesConfig(max_batch_size=4),
        hailo=HailoConfig(vlm_hef=str(vlm_hef), clip_hef=str(clip_hef or ""), **hailo),  # type: ignore[arg-type]
    )


@pytest.fixture
def loaded(hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path) -> Iterator[HailoBackend]:
    backend = HailoBackend(config(demo_vlm_hef, demo_clip_hef))
    backend.load()
    yield backend
    backend.unload()


@pytest.fixture(scope="module")
def reference() -> ClipRunner:
    return ClipRunner(DEMO_CLIP_DIR, threads=1)


def pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.asarray(sw.render(sw.random_scene(rng)).convert("RGB")) for _ in range(count)]


@pytest.mark.parametrize("output", ["float32", "dequantize"])
def test_image_embeddings_equal_the_onnx_runners_within_quantisation(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path, reference: ClipRunner, output: str
) -> None:
    backend = HailoBackend(config(demo_vlm_hef, demo_clip_hef, clip_output=output))
    backend.load()
    try:
        images = pictures(6)
        assert backend.clip_images is not None
        assert backend.clip_images.quantised is (output == "dequantize")  # uint8 codes read here
        mark = len(journal.JOURNAL)
        embeddings = backend.embed_images("clip-demo", images)
        runs = [e for e in journal.JOURNAL[mark:] if e["event"] == "infer"]
        texts = backend.embed_texts("clip-demo", ["a red circle", "two blue squares"])
        scale = backend.logit_scale("clip-demo")
    finally:
        backend.unload()
    expected = reference.embed_images(images)
    assert embeddings.shape == expected.shape and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    cosines = np.sum(embeddings * expected, axis=1)
    assert np.all(cosines > COSINE_FLOOR), cosines
    assert not np.allclose(embeddings, expected, atol=1e-6)  # the quantised encoder really ran
    assert len(runs) == 2  # batch size 4: six images in two device runs
    np.testing.assert_array_equal(texts, reference.embed_texts(["a red circle", "two blue squares"]))
    assert scale == pytest.approx(reference.logit_scale)


def test_both_output_modes_agree_and_a_float_hef_is_not_dequantised_twice(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path, tmp_path: Path
) -> None:
    float_hef = make_clip_hef(tmp_path, DEMO_CLIP_DIR, quantized=False)
    images = pictures(3, seed=1)
    results = []
    for hef, output in ((demo_clip_hef, "float32"), (demo_clip_hef, "dequantize"), (float_hef, "dequantize")):
        backend = HailoBackend(config(demo_vlm_hef, hef, clip_output=output))
        backend.load()
        try:
            results.append(backend.embed_images("clip-demo", images))
        finally:
            backend.unload()
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)
    np.testing.assert_allclose(results[0], results[2], atol=1e-5)


def test_a_16_bit_clip_hef_is_read_as_uint16_and_dequantised_here(
    hailo_env: HailoEnv, demo_vlm_hef: Path, tmp_path: Path, reference: ClipRunner
) -> None:
    wide = make_clip_hef(tmp_path, DEMO_CLIP_DIR, bits=16)
    backend = HailoBackend(config(demo_vlm_hef, wide, clip_output="dequantize"))
    backend.load()
    try:
        assert backend.clip_images is not None
        assert backend.clip_images.output_dtype == np.uint16 and backend.clip_images.quantised
        images = pictures(3, seed=2)
        embeddings = backend.embed_images("clip-demo", images)
    finally:
        backend.unload()
    cosines = np.sum(embeddings * reference.embed_images(images), axis=1)
    assert np.all(cosines > 0.99999), cosines  # 16-bit codes: far finer than uint8's


def test_describe_and_details_name_the_devices_models(loaded: HailoBackend) -> None:
    vlm, clip = loaded.describe()
    assert (vlm.id, vlm.kind, vlm.backend, vlm.context_length) == ("qwen2-vl-demo", "vlm", "hailort", 2048)
    assert (clip.id, clip.kind, clip.embedding_dim, clip.image_size) == ("clip-demo", "clip", 64, (96, 96))
    details = loaded.details()
    assert details["clip_batch_size"] == 4 and details["clip_output"] == "float32"


def test_image_tokens_in_message_text_are_refused_before_the_device_sees_them(loaded: HailoBackend) -> None:
    image = pictures(1)[0]
    messages = [Message("user", (ImagePart(image), TextPart("what is <|image_pad|> here?")))]
    with pytest.raises(InvalidRequestError) as raised:
        loaded.generate("qwen2-vl-demo", messages, SamplingParams(temperature=0))
    assert raised.value.param == "messages"


def test_a_prompt_beyond_the_context_is_refused_before_generating(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path
) -> None:
    small = dataclasses.replace(
        config(demo_vlm_hef, None), model=ModelConfig(path=str(DEMO_VLM_DIR), warmup=False, context_length=40)
    )
    backend = HailoBackend(small)
    backend.load()
    try:
        messages = [Message("user", (ImagePart(pictures(1)[0]), TextPart("What color is the shape?")))]
        assert backend.count_tokens("qwen2-vl-demo", messages) > 40
        mark = len(journal.JOURNAL)
        with pytest.raises(InvalidRequestError) as raised:
            backend.generate("qwen2-vl-demo", messages, SamplingParams(temperature=0))
        assert raised.value.code == "context_length_exceeded"
        assert not [e for e in journal.JOURNAL[mark:] if e["event"] == "generate"]
    finally:
        backend.unload()


def test_load_errors_name_the_hef_and_free_the_device(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "download.hef"
    garbage.write_bytes(b"<html>404</html>")
    cases = [
        (config(tmp_path / "missing.hef", demo_clip_hef), "missing.hef: HEF not found"),
        (config(garbage, demo_clip_hef), f"{garbage}: HailoRT cannot load this VLM HEF"),
        (config(demo_clip_hef, demo_clip_hef), f"{demo_clip_hef}: HailoRT cannot load this VLM HEF"),
        (config(demo_vlm_hef, demo_vlm_hef), f"{demo_vlm_hef}: HailoRT cannot load this CLIP image encoder"),
    ]
    for broken, message in cases:
        with pytest.raises(ModelLoadError) as raised:
            HailoBackend(broken).load()
        assert message in raised.value.message
    backend = HailoBackend(config(demo_vlm_hef, demo_clip_hef))
    backend.load()  # nothing was left holding the device or its KV cache
    backend.unload()


def test_a_device_held_by_another_process_is_busy_until_it_lets_go(
    hailo_env: HailoEnv, demo_vlm_hef: Path, demo_clip_hef: Path
) -> None:
    backend = HailoBackend(config(demo_vlm_hef, demo_clip_hef))
    with HeldDevice(group="UNIQUE") as holder:  # as hailo-ollama holds it
        with pytest.raises(DeviceBusyError) as raised:
            backend.load()
        assert "HAILO_OUT_OF_PHYSICAL_DEVICES" in raised.value.message
        assert "keep_alive" in raised.value.message
        holder.stop()
        backend.load()
    try:
        assert backend.describe()[0].id == "qwen2-vl-demo"
    finally:
        backend.unload()


def test_a_device_that_stops_answering_is_a_device_failure(
    hailo_env: HailoEnv, demo_vlm_hef: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAILO_DOUBLE_TOKEN_DELAY_S", "1.0")
    backend = HailoBackend(config(demo_vlm_hef, None, read_timeout_s=0.1))
    backend.load()
    try:
        messages = [Message("user", (ImagePart(pictures(1)[0]), TextPart("What color is the shape?")))]
        events = backend.generate("qwen2-vl-demo", messages, SamplingParams(temperature=0))
        with pytest.raises(DeviceFailedError) as raised:
            next(events)
        assert "HAILO_TIMEOUT" in raised.value.message or "timeout" in raised.value.message.lower()
    finally:
        backend.unload()


CONTEXT_API = ["max_context_capacity", "get_context_usage_size", "save_context"]


@pytest.mark.parametrize(
    ("version", "features"),
    [
        ("5.0.1", []),
        ("5.1.0", ["optimize_memory_on_device"]),
        ("5.1.1", ["optimize_memory_on_device", *CONTEXT_API]),
        ("5.2.0", ["optimize_memory_on_device", "videos", *CONTEXT_API]),
    ],
)
def test_features_are_read_from_signatures_per_version(
    version: str, features: list[str], version_restored: None
) -> None:
    platform = import_version(version)
    import hailo_platform.genai as genai

    detected = detect_features(platform, genai)
    assert detected.version == version
    assert detected.names == features


def test_hailort_without_genai_is_a_load_error_saying_so(
    hailo_env: HailoEnv, demo_vlm_hef: Path, version_restored: None
) -> None:
    import_version("5.0.0")
    with pytest.raises(ModelLoadError) as raised:
        HailoBackend(config(demo_vlm_hef, None)).load()
    assert "HailoRT 5.0.0 has no GenAI API" in raised.value.message
