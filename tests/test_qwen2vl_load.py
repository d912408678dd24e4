"""Loading the Qwen2-VL runner: bad model directories fail at load naming the file; both config
layouts (transformers 5 nested, and the real 2B repo's top-level) and decoder variants load."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from npu_worker.backend import Message, ModelLoadError, SamplingParams, Token
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo" / "qwen2-vl-demo"
QUESTION = [Message.text("user", "Hello!")]


@pytest.fixture
def model_copy(tmp_path) -> Path:
    target = tmp_path / "qwen2-vl-demo"
    shutil.copytree(MODEL_DIR, target)
    return target


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def greedy_ids(runner: Qwen2VLRunner) -> list[int]:
    events = runner.generate(QUESTION, SamplingParams(temperature=0, max_tokens=8))
    return [e.token_id for e in events if isinstance(e, Token)]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing_config": (lambda d: (d / "config.json").unlink(), "config.json"),
    "malformed_config": (lambda d: (d / "config.json").write_text("{not json"), "config.json"),
    "config_without_layers": (
        lambda d: edit_json(d / "config.json", lambda c: c["text_config"].pop("num_hidden_layers")),
        "num_hidden_layers",
    ),
    "wrong_mrope_section": (
        lambda d: edit_json(
            d / "config.json", lambda c: c["text_config"]["rope_parameters"].update(mrope_section=[1, 1, 1])
        ),
        "mrope_section",
    ),
    "missing_tokenizer": (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json"),
    "malformed_tokenizer": (lambda d: (d / "tokenizer.json").write_text('{"model": 3}'), "tokenizer.json"),
    "no_chat_template": (
        lambda d: edit_json(d / "tokenizer_config.json", lambda c: c.pop("chat_template")),
        "tokenizer_config.json",
    ),
    "broken_chat_template": (
        lambda d: edit_json(d / "tokenizer_config.json", lambda c: c.update(chat_template="{% for %}")),
        "chat template",
    ),
    "missing_preprocessor": (lambda d: (d / "preprocessor_config.json").unlink(), "preprocessor_config.json"),
    "malformed_preprocessor": (
        lambda d: edit_json(d / "preprocessor_config.json", lambda c: c.update(patch_size="14")),
        "preprocessor_config.json",
    ),
    "missing_vision_encoder": (
        lambda d: (d / "onnx" / "vision_encoder.onnx").unlink(),
        "vision_encoder.onnx",
    ),
    "truncated_decoder": (
        lambda d: truncate(d / "onnx" / "decoder_model_merged.onnx"),
        "decoder_model_merged.onnx",
    ),
    "truncated_embed_tokens": (lambda d: truncate(d / "onnx" / "embed_tokens.onnx"), "embed_tokens.onnx"),
    "decoder_with_other_heads": (
        lambda d: edit_json(d / "config.json", lambda c: c["text_config"].update(num_key_value_heads=4)),
        "key/value heads",
    ),
    "decoder_of_another_size": (
        lambda d: edit_json(d / "config.json", lambda c: c["text_config"].update(num_hidden_layers=5)),
        "past_key_values.4.key",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_model_directory_fails_at_load_naming_the_fault(model_copy, breakage):
    breaker, named = BREAKAGES[breakage]
    breaker(model_copy)
    with pytest.raises(ModelLoadError, match=named.replace(".", r"\.")):
        Qwen2VLRunner(model_copy)


def test_a_missing_model_directory_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        Qwen2VLRunner(tmp_path / "absent")


def test_the_real_2b_config_layout_with_top_level_text_settings_loads_the_same(model_copy):
    def flatten(config: dict) -> None:
        text = config.pop("text_config")
        rope = text.pop("rope_parameters")
        config.update(text, rope_scaling={"type": "mrope", "mrope_section": rope["mrope_section"]})

    expected = greedy_ids(Qwen2VLRunner(MODEL_DIR))
    edit_json(model_copy / "config.json", flatten)
    assert greedy_ids(Qwen2VLRunner(model_copy)) == expected


def test_a_quantized_decoder_variant_is_chosen_by_suffix(model_copy):
    onnx_dir = model_copy / "onnx"
    shutil.copy(onnx_dir / "decoder_model_merged.onnx", onnx_dir / "decoder_model_merged_int8.onnx")
    (onnx_dir / "decoder_model_merged.onnx").unlink()  # only the variant is there
    assert greedy_ids(Qwen2VLRunner(model_copy, decoder_variant="int8")) == greedy_ids(
        Qwen2VLRunner(MODEL_DIR)
    )
    with pytest.raises(ModelLoadError, match=r"decoder_model_merged_q4\.onnx"):
        Qwen2VLRunner(model_copy, decoder_variant="q4")


def test_eos_ids_fall_back_to_config_json_without_generation_config(model_copy):
    (model_copy / "generation_config.json").unlink()
    runner = Qwen2VLRunner(model_copy)
    assert runner.config.eos_token_ids == {
        json.loads((model_copy / "config.json").read_text())["text_config"]["eos_token_id"]
    }
