"""Configuration: lookup order, environment overrides, validation errors naming file, key and reason."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from npu_worker import config_load as cfg
from npu_worker.config import Config, ConfigError
from npu_worker.config_load import config_from_json, load_config


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_are_the_design_studys(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path / "c.yaml", {})), env={})
    assert (config.api.host, config.api.port, config.api.cors_enabled) == ("127.0.0.1", 11435, False)
    assert (config.inference.max_tokens, config.inference.temperature, config.inference.top_p) == (
        512,
        0.7,
        0.95,
    )
    assert (config.resources.max_batch_size, config.resources.memory_limit_mb) == (1, 4096)
    assert config.backend == "onnx" and config.resources.max_queue == 16
    assert Path(config.model.path).name == "qwen2-vl-demo"


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write(tmp_path / "explicit.yaml", {"api": {"port": 1001}})
    from_env = write(tmp_path / "env.yaml", {"api": {"port": 1002}})
    system = write(tmp_path / "system.yaml", {"api": {"port": 1003}})
    monkeypatch.setattr(cfg, "SYSTEM_CONFIG", system)
    env = {"HAILO_VISION_CONFIG": str(from_env)}
    assert load_config(str(explicit), env=env).api.port == 1001
    assert load_config(None, env=env).api.port == 1002
    assert load_config(None, env={}).api.port == 1003
    monkeypatch.setattr(cfg, "SYSTEM_CONFIG", tmp_path / "absent.yaml")
    assert load_config(None, env={}).source == str(cfg.REPO_CONFIG)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"api": {"port": 1001, "api_keys": ["a"]}, "backend": "onnx"})
    env = {
        "HAILO_VISION_API_PORT": "2002",
        "HAILO_VISION_API_API_KEYS": "k1, k2",
        "HAILO_VISION_API_CORS_ENABLED": "yes",
        "HAILO_VISION_BACKEND": "auto",
        "HAILO_VISION_INFERENCE_TEMPERATURE": "0",
    }
    config = load_config(str(path), env=env)
    assert config.api.port == 2002 and config.api.api_keys == ("k1", "k2") and config.api.cors_enabled
    assert config.backend == "auto" and config.inference.temperature == 0.0


def test_relative_model_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"model": {"path": "models/vlm"}})
    assert load_config(str(path), env={}).model.path == str(tmp_path / "models" / "vlm")


@pytest.mark.parametrize(
    ("data", "env", "expected"),
    [
        ({"api": {"port": "http"}}, {}, "api.port: expected an integer, got 'http'"),
        ({"api": {"port": 70000}}, {}, "api.port: must be a TCP port"),
        ({"api": {"prot": 1}}, {}, "unknown key api.prot"),
        ({"colour": 1}, {}, "unknown key 'colour'"),
        ({"backend": "cuda"}, {}, "backend: must be one of onnx, hailo, auto"),
        ({"inference": {"temperature": 3}}, {}, "inference.temperature: must be between 0 and 2"),
        ({"resources": {"max_queue": 0}}, {}, "resources.max_queue: must be greater than 0"),
        ({"api": {"cors_enabled": "maybe"}}, {}, "api.cors_enabled: expected true or false"),
        ({"clip": {"templates": ["no placeholder"]}}, {}, "clip.templates: every template must hold '{}'"),
        ({"api": "x"}, {}, "api: expected a mapping"),
        ({}, {"HAILO_VISION_API_PORT": "x"}, "environment HAILO_VISION_API_PORT: expected an integer"),
        ({"inference": {"top_p": 0}}, {}, "inference.top_p: must be in (0, 1], got 0"),
        ({"clip": {"batch_wait_ms": -1}}, {}, "clip.batch_wait_ms: must not be negative"),
        ({"logging": {"level": "loud"}}, {}, "logging.level: must be one of debug, info, warning, error"),
        (
            {},
            {"HAILO_VISION_API_PROT": "8080"},
            "environment HAILO_VISION_API_PROT: names no configuration key",
        ),
        ({}, {"HAILO_VISION_COLOUR": "red"}, "environment HAILO_VISION_COLOUR: names no configuration key"),
    ],
)
def test_validation_errors_name_file_key_and_reason(
    tmp_path: Path, data: dict[str, object], env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as error:
        load_config(str(path), env=env)
    assert expected in str(error.value)
    if not env:
        assert str(path) in str(error.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"), env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("api: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(broken), env={})


def test_every_key_is_documented_in_etc_config_yaml() -> None:
    documented = yaml.safe_load(cfg.REPO_CONFIG.read_text())
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        assert section.name in documented, section.name
        if dataclasses.is_dataclass(section.type) or isinstance(documented[section.name], dict):
            keys = {f.name for f in dataclasses.fields(getattr(Config(), section.name))}
            assert set(documented[section.name]) == keys, section.name


def test_the_resolved_config_round_trips_for_the_children(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path / "c.yaml", {"api": {"api_keys": ["k"]}})), env={})
    assert config_from_json(config.to_json()) == config


def test_every_key_has_one_override_variable_and_helper_variables_are_allowed(tmp_path: Path) -> None:
    variables = cfg.env_variables()
    assert variables["HAILO_VISION_API_PORT"] == "api.port"
    assert variables["HAILO_VISION_BACKEND"] == "backend"
    values = [getattr(Config(), f.name) for f in dataclasses.fields(Config) if f.name != "source"]
    expected = sum(len(dataclasses.fields(v)) if dataclasses.is_dataclass(v) else 1 for v in values)
    assert len(variables) == expected
    path = write(tmp_path / "c.yaml", {})
    env = {name: "x" for name in cfg.NON_KEY_VARIABLES if name != cfg.ENV_FILE}
    assert load_config(str(path), env=env).source == str(path)


def test_every_rule_is_declared_beside_its_key() -> None:
    """A key with a constraint carries it in its field's metadata; nothing validates keys elsewhere."""
    rules = {
        f"{section.name}.{f.name}": f.metadata["rule"]
        for section in dataclasses.fields(Config)
        if dataclasses.is_dataclass(getattr(Config(), section.name))
        for f in dataclasses.fields(getattr(Config(), section.name))
        if "rule" in f.metadata
    }
    assert rules["api.port"].violation(80) is None and "TCP port" in rules["api.port"].violation(70000)
    assert rules["resources.max_queue"].violation(0) == "must be greater than 0, got 0"
    # Every default meets its own rule.
    for name, rule in rules.items():
        section, key = name.split(".")
        assert rule.violation(getattr(getattr(Config(), section), key)) is None, name
