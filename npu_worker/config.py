"""hailo-vision configuration: where it is looked up, its defaults, environment overrides, validation.

Lookup order: `--config FILE`, `$HAILO_VISION_CONFIG`, `/etc/hailo/vision/config.yaml`, then the repo's
`etc/config.yaml`. Any key can be overridden with `HAILO_VISION_<SECTION>_<KEY>` (e.g.
`HAILO_VISION_API_PORT=8080`). Errors name the file, the key and the reason, at start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SYSTEM_CONFIG = Path("/etc/hailo/vision/config.yaml")
REPO_CONFIG = REPO_ROOT / "etc" / "config.yaml"
DEMO_MODELS = REPO_ROOT / "models" / "demo"
ENV_FILE = "HAILO_VISION_CONFIG"
ENV_PREFIX = "HAILO_VISION_"


class ConfigError(ValueError):
    """A configuration problem, with the file, key and reason in the message."""


@dataclass(frozen=True)
class ModelConfig:
    name: str = "qwen2-vl-demo"
    path: str = str(DEMO_MODELS / "qwen2-vl-demo")
    warmup: bool = True
    persistent: bool = True
    decoder_variant: str = ""  # "" = decoder_model_merged.onnx; e.g. "q4" -> decoder_model_merged_q4.onnx
    context_length: int = 0  # 0 = the model's own window


HAILO_APPS_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of my {}.",
    "a photo of a big {}.",
    "a photo of a small {}.",
)


@dataclass(frozen=True)
class ClipConfig:
    enabled: bool = True
    name: str = "clip-demo"
    path: str = str(DEMO_MODELS / "clip-demo")
    templates: tuple[str, ...] = HAILO_APPS_TEMPLATES
    negative_prompts: tuple[str, ...] = ("a photo of something else.", "a photo of an empty background.")
    preload_prompts: tuple[str, ...] = ()
    batch_wait_ms: float = 5.0
    text_cache_mb: float = 16.0
    cache_file: str = ""  # "" = $STATE_DIRECTORY/clip-text-cache.npz, else none
    max_prompts: int = 64
    max_prompt_chars: int = 300
    max_images: int = 16
    max_regions: int = 32


@dataclass(frozen=True)
class InferenceConfig:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    timeout_s: float = 120.0


@dataclass(frozen=True)
class ResourcesConfig:
    max_batch_size: int = 1
    memory_limit_mb: int = 4096
    max_queue: int = 16
    cpu_threads: int = 0  # 0 = ONNX Runtime picks (at most 4)


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 11435
    cors_enabled: bool = False
    cors_origins: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    api_key_file: str = ""
    drain_timeout_s: float = 30.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_images_per_request: int = 8
    allow_remote_images: bool = False
    remote_image_timeout_s: float = 10.0


@dataclass(frozen=True)
class WorkerConfig:
    heartbeat_interval_s: float = 0.5
    heartbeat_timeout_s: float = 3.0
    start_timeout_s: float = 300.0


@dataclass(frozen=True)
class SupervisorConfig:
    restart_initial_s: float = 1.0
    restart_max_s: float = 30.0
    flap_deaths: int = 5
    flap_window_s: float = 60.0
    runtime_dir: str = ""  # "" = $RUNTIME_DIRECTORY (systemd) or a private temp dir


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "logfmt"  # logfmt | json
    level: str = "info"


@dataclass(frozen=True)
class HailoConfig:
    """HailoRT settings (backend: hailo). HEF paths are relative to model.path / clip.path."""

    vlm_hef: str = ""  # "" = the only *.hef in model.path
    clip_hef: str = ""  # "" = the only *.hef in clip.path
    group_id: str = "SHARED"  # VDevice group: SHARED lets CLIP and the VLM share the device
    optimize_memory_on_device: bool = False  # HailoRT 5.1+: tokenize on the host
    clip_output: str = "float32"  # float32: FLOAT32 output requested; dequantize: with quant_infos
    default_top_k: int = 1000  # sent when a request sets no top-k (the device requires one)
    image_tokens_per_frame: int = 0  # 0 = Qwen2-VL's (frame height / 28) * (frame width / 28)
    read_timeout_s: float = 30.0  # longest wait for one token (or one CLIP batch) from the device


@dataclass(frozen=True)
class Config:
    backend: str = "onnx"  # onnx | hailo | auto
    model: ModelConfig = field(default_factory=ModelConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    hailo: HailoConfig = field(default_factory=HailoConfig)
    source: str = "<defaults>"  # the file it was read from

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Config:
        data = json.loads(text)
        return _build(data, data.get("source", "<resolved>"), {})


_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "backend"): ("onnx", "hailo", "auto"),
    ("logging", "format"): ("logfmt", "json"),
    ("logging", "level"): ("debug", "info", "warning", "error"),
    ("hailo", "group_id"): ("SHARED", "UNIQUE"),
    ("hailo", "clip_output"): ("float32", "dequantize"),
}
_POSITIVE = {
    ("inference", "max_tokens"),
    ("inference", "timeout_s"),
    ("resources", "max_batch_size"),
    ("resources", "max_queue"),
    ("api", "drain_timeout_s"),
    ("api", "max_body_bytes"),
    ("api", "max_image_bytes"),
    ("api", "max_image_pixels"),
    ("api", "max_images_per_request"),
    ("api", "remote_image_timeout_s"),
    ("clip", "max_prompts"),
    ("clip", "max_prompt_chars"),
    ("clip", "max_images"),
    ("clip", "max_regions"),
    ("worker", "heartbeat_interval_s"),
    ("worker", "heartbeat_timeout_s"),
    ("worker", "start_timeout_s"),
    ("supervisor", "restart_initial_s"),
    ("supervisor", "restart_max_s"),
    ("supervisor", "flap_deaths"),
    ("supervisor", "flap_window_s"),
    ("hailo", "default_top_k"),
    ("hailo", "read_timeout_s"),
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` as the field's type; strings (from the environment) are parsed."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation in (int, float):
        expected = "an integer" if annotation is int else "a number"
        accepted = (int, str) if annotation is int else (int, float, str)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ConfigError(f"{where}: expected {expected}, got {value!r}")
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {expected}, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _section_fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _build(data: dict[str, Any], source: str, env: dict[str, str]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    top = _section_fields(Config)
    values: dict[str, Any] = {}
    for key in data:
        if key not in top:
            raise ConfigError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(top))})")
    for name, annotation in top.items():
        if name == "source":
            continue
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            raw = data.get(name) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{source}: {name}: expected a mapping, got {raw!r}")
            values[name] = _build_section(annotation, name, raw, source, env)
        else:
            raw_value = env.get(f"{ENV_PREFIX}{name.upper()}", data.get(name, getattr(Config, name, None)))
            value = _coerce(raw_value, annotation, f"{source}: {name}")
            values[name] = _validate_value("", name, value, f"{source}: {name}")
    return Config(source=source, **values)


def _build_section(cls: type, section: str, raw: dict[str, Any], source: str, env: dict[str, str]) -> Any:
    known = _section_fields(cls)
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {section}.{key} (known in {section}: {', '.join(sorted(known))})"
            )
    values: dict[str, Any] = {}
    defaults = cls()
    for key, annotation in known.items():
        env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
        if env_name in env:
            where = f"environment {env_name}"
            value = _coerce(env[env_name], annotation, where)
        elif key in raw and raw[key] is not None:
            where = f"{source}: {section}.{key}"
            value = _coerce(raw[key], annotation, where)
        else:
            value = getattr(defaults, key)
            where = f"{source}: {section}.{key}"
        values[key] = _validate_value(section, key, value, where)
    return cls(**values)


def _validate_value(section: str, key: str, value: Any, where: str) -> Any:
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    if (section, key) in _POSITIVE and value <= 0:
        raise ConfigError(f"{where}: must be greater than 0, got {value!r}")
    if (section, key) in (("clip", "batch_wait_ms"), ("clip", "text_cache_mb")) and value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    if (section, key) == ("clip", "templates") and not all("{}" in t for t in value):
        raise ConfigError(f"{where}: every template must hold '{{}}' where the prompt goes, got {value!r}")
    if (section, key) == ("hailo", "image_tokens_per_frame") and value < 0:
        raise ConfigError(f"{where}: must be 0 (derived from the frame size) or more, got {value!r}")
    if (section, key) == ("api", "port") and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: must be a TCP port 0..65535, got {value!r}")
    if (section, key) == ("inference", "temperature") and not 0 <= value <= 2:
        raise ConfigError(f"{where}: must be between 0 and 2, got {value!r}")
    if (section, key) == ("inference", "top_p") and not 0 < value <= 1:
        raise ConfigError(f"{where}: must be in (0, 1], got {value!r}")
    return value


def find_config_file(explicit: str | None, env: dict[str, str]) -> Path | None:
    """The config file by precedence, or None when no file exists (built-in defaults apply)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file given with --config does not exist")
        return path
    if env.get(ENV_FILE):
        path = Path(env[ENV_FILE])
        if not path.is_file():
            raise ConfigError(f"{path}: config file named by ${ENV_FILE} does not exist")
        return path
    for candidate in (SYSTEM_CONFIG, REPO_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """The validated configuration by the lookup order, with environment overrides applied."""
    environ = dict(os.environ if env is None else env)
    path = find_config_file(explicit, environ)
    if path is None:
        return _build({}, "<defaults>", environ)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    config = _build(data, str(path), environ)
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative model paths in a file are relative to that file's folder."""

    def absolute(p: str) -> str:
        return p if not p or Path(p).is_absolute() else str((base / p).resolve())

    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, path=absolute(config.model.path)),
        clip=dataclasses.replace(
            config.clip, path=absolute(config.clip.path), cache_file=absolute(config.clip.cache_file)
        ),
    )
