"""hailo-vision configuration: where it is looked up, every key with its default and rules, overrides.

Lookup order: `--config FILE`, `$HAILO_VISION_CONFIG`, `/etc/hailo/vision/config.yaml`, then the repo's
`etc/config.yaml`. Any key can be overridden with `HAILO_VISION_<SECTION>_<KEY>` (e.g.
`HAILO_VISION_API_PORT=8080`). Each key is declared once below, with its type, its default and the
rule its value must meet side by side (`setting`). Errors name the file (or the variable), the key and
the reason, at start; so does an unknown key in the file or a `HAILO_VISION_*` variable that names none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable, Mapping
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
# $HAILO_VISION_BACKEND_FACTORY=module:callable builds the backend instead (benchmarks and tests only).
FACTORY_ENV = "HAILO_VISION_BACKEND_FACTORY"
# $HAILO_VISION_DEVICE_DIR: where the Hailo device nodes are (default /dev; tests: the double's).
DEVICE_DIR_ENV = "HAILO_VISION_DEVICE_DIR"
# Variables with the prefix that name no key on purpose.
NON_KEY_VARIABLES = frozenset({ENV_FILE, FACTORY_ENV, DEVICE_DIR_ENV, "HAILO_VISION_BENCH_HAILORT"})


class ConfigError(ValueError):
    """A configuration problem, with the file, key and reason in the message."""


@dataclass(frozen=True)
class Rule:
    """What a key's value must be, beyond its type; `check` returns the reason a value is refused."""

    choices: tuple[str, ...] = ()
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    check: Callable[[Any], str | None] | None = None

    def violation(self, value: Any) -> str | None:
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        low_ok = (self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
        if not low_ok or (self.le is not None and value > self.le):
            return f"{self._range()}, got {value!r}"
        return self.check(value) if self.check is not None else None

    def _range(self) -> str:
        if self.gt is not None and self.le is not None:
            return f"must be in ({self.gt:g}, {self.le:g}]"
        if self.ge is not None and self.le is not None:
            return f"must be between {self.ge:g} and {self.le:g}"
        if self.gt is not None:
            return f"must be greater than {self.gt:g}"
        return "must not be negative" if self.ge == 0 else f"must be at least {self.ge:g}"


def setting(
    default: Any,
    *,
    choices: tuple[str, ...] = (),
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A configuration key: its default and the rule its value must meet, declared together."""
    return field(default=default, metadata={"rule": Rule(choices, gt, ge, le, check)})


def _templates_hold_placeholder(templates: tuple[str, ...]) -> str | None:
    if all("{}" in t for t in templates):
        return None
    return f"every template must hold '{{}}' where the prompt goes, got {templates!r}"


def _tcp_port(port: int) -> str | None:
    return None if 0 <= port <= 65535 else f"must be a TCP port 0..65535, got {port!r}"


def _http_url(url: str) -> str | None:
    ok = url == "" or url.startswith(("http://", "https://"))
    return None if ok else f"must be an http(s) URL or empty, got {url!r}"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "qwen2-vl-demo"
    path: str = str(DEMO_MODELS / "qwen2-vl-demo")
    warmup: bool = True
    persistent: bool = True  # load at start and stay warm (the scheduler may still share the NPU)
    decoder_variant: str = ""  # "" = decoder_model_merged.onnx; e.g. "q4" -> decoder_model_merged_q4.onnx
    context_length: int = setting(0, ge=0)  # 0 = the model's own window


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
    templates: tuple[str, ...] = setting(HAILO_APPS_TEMPLATES, check=_templates_hold_placeholder)
    negative_prompts: tuple[str, ...] = ("a photo of something else.", "a photo of an empty background.")
    preload_prompts: tuple[str, ...] = ()
    batch_wait_ms: float = setting(5.0, ge=0)
    text_cache_mb: float = setting(16.0, ge=0)
    cache_file: str = ""  # "" = $STATE_DIRECTORY/clip-text-cache.npz, else none
    max_prompts: int = setting(64, gt=0)
    max_prompt_chars: int = setting(300, gt=0)
    max_images: int = setting(16, gt=0)
    max_regions: int = setting(32, gt=0)


@dataclass(frozen=True)
class InferenceConfig:
    max_tokens: int = setting(512, gt=0)
    temperature: float = setting(0.7, ge=0, le=2)
    top_p: float = setting(0.95, gt=0, le=1)
    timeout_s: float = setting(120.0, gt=0)
    # conversations whose context is kept for a follow-up turn (0 = off), and the memory they may hold
    context_reuse_entries: int = setting(2, ge=0)
    context_reuse_mb: float = setting(256.0, ge=0)
    structured_output_attempts: int = setting(3, gt=0)  # Hailo: answers tried against a JSON Schema


@dataclass(frozen=True)
class ResourcesConfig:
    max_batch_size: int = setting(1, gt=0)
    memory_limit_mb: int = setting(4096, gt=0)  # the API's and the worker's RSS together
    memory_hard_limit_mb: int = setting(0, ge=0)  # the worker's RSS; 0 = 1.25 x memory_limit_mb
    min_available_mb: int = setting(512, ge=0)  # system memory left for the rest of the Pi
    max_queue: int = setting(16, gt=0)
    cpu_threads: int = setting(0, ge=0)  # 0 = ONNX Runtime picks (at most 4)


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = setting(11435, check=_tcp_port)
    cors_enabled: bool = False
    cors_origins: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    api_key_file: str = ""
    drain_timeout_s: float = setting(30.0, gt=0)
    max_body_bytes: int = setting(32 * 1024 * 1024, gt=0)
    max_image_bytes: int = setting(20 * 1024 * 1024, gt=0)
    max_image_pixels: int = setting(50_000_000, gt=0)
    max_images_per_request: int = setting(8, gt=0)
    allow_remote_images: bool = False
    remote_image_timeout_s: float = setting(10.0, gt=0)
    open_probes: bool = True  # /health, /health/ready, /readyz and / answer without a key
    open_metrics: bool = False  # /metrics answers without a key
    max_connections: int = setting(256, gt=0)
    keep_alive_s: int = setting(10, gt=0)  # past the 5 s idle expiry of httpx (openai, ollama clients)
    header_timeout_s: float = setting(10.0, gt=0)
    max_header_bytes: int = setting(64 * 1024, ge=1024)
    body_timeout_s: float = setting(60.0, gt=0)
    send_timeout_s: float = setting(30.0, gt=0)


@dataclass(frozen=True)
class VideoConfig:
    """Clips: frame lists and video files in chat requests."""

    max_frames: int = setting(8, ge=2)  # a clip is sampled down to this many frames, evenly spaced
    fps: float = setting(2.0, gt=0)  # video files: frames taken per second of video (then max_frames)
    max_input_frames: int = setting(64, gt=0)  # a frame list longer than this is refused (400)
    max_clips_per_request: int = setting(2, gt=0)
    max_frame_pixels: int = setting(200_704, gt=0)  # frames are decoded to about this many pixels
    max_bytes: int = setting(64 * 1024 * 1024, gt=0)  # a video file larger than this is refused (413)
    max_duration_s: float = setting(600.0, gt=0)  # a longer video file is refused (400)


@dataclass(frozen=True)
class WorkerConfig:
    heartbeat_interval_s: float = setting(0.5, gt=0)
    heartbeat_timeout_s: float = setting(3.0, gt=0)
    start_timeout_s: float = setting(300.0, gt=0)


@dataclass(frozen=True)
class SupervisorConfig:
    restart_initial_s: float = setting(1.0, gt=0)
    restart_max_s: float = setting(30.0, gt=0)
    flap_deaths: int = setting(5, gt=0)
    flap_window_s: float = setting(60.0, gt=0)
    runtime_dir: str = ""  # "" = $RUNTIME_DIRECTORY (systemd) or a private temp dir


@dataclass(frozen=True)
class LoggingConfig:
    format: str = setting("logfmt", choices=("logfmt", "json"))
    level: str = setting("info", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class HailoConfig:
    """HailoRT settings (backend: hailo). HEF paths are relative to model.path / clip.path."""

    vlm_hef: str = ""  # "" = the only *.hef in model.path
    clip_hef: str = ""  # "" = the only *.hef in clip.path
    # VDevice group: SHARED lets CLIP and the VLM share the device
    group_id: str = setting("SHARED", choices=("SHARED", "UNIQUE"))
    optimize_memory_on_device: bool = False  # HailoRT 5.1+: tokenize on the host
    # float32: FLOAT32 output requested; dequantize: with quant_infos
    clip_output: str = setting("float32", choices=("float32", "dequantize"))
    default_top_k: int = setting(1000, gt=0)  # sent when a request sets no top-k (the device requires one)
    image_tokens_per_frame: int = setting(0, ge=0)  # 0 = Qwen2-VL's (frame h / 28) * (frame w / 28)
    read_timeout_s: float = setting(30.0, gt=0)  # longest wait for one token (or CLIP batch) from the device
    clips_as_frames: bool = False  # clips as separate frames (any release, any HEF) instead of `videos`
    # a conversation's device context holding at least this many tokens is saved (save_context) before an
    # unrelated request clears it, and loaded back when the conversation continues; 0 = never
    context_save_min_tokens: int = setting(512, ge=0)


@dataclass(frozen=True)
class ThermalConfig:
    """Temperature levels and what the warning level trims; see docs/ARCHITECTURE.md."""

    poll_s: float = setting(5.0, gt=0)
    soc_temp_file: str = "/sys/class/thermal/thermal_zone0/temp"  # "" = not read
    vcgencmd: str = "vcgencmd"  # "" = not run
    soc_warning_c: float = setting(75.0, gt=0)
    soc_critical_c: float = setting(82.0, gt=0)
    hailo_warning_c: float = setting(85.0, gt=0)
    hailo_critical_c: float = setting(95.0, gt=0)
    hysteresis_c: float = setting(5.0, ge=0)
    warning_max_tokens: int = setting(128, gt=0)
    warning_clip_batch: int = setting(2, gt=0)
    warning_pause_ms: float = setting(500.0, ge=0)


POLICIES = ("share", "vision-first", "ollama-first", "exclusive")


@dataclass(frozen=True)
class SchedulerConfig:
    """Turns on the NPU with hailo-ollama (backend: hailo); see docs/ARCHITECTURE.md."""

    policy: str = setting("share", choices=POLICIES)
    ollama_url: str = setting("http://127.0.0.1:8000", check=_http_url)  # "" = no hailo-ollama
    ollama_timeout_s: float = setting(2.0, gt=0)  # /api/ps unanswered this long = generating
    ollama_poll_s: float = setting(5.0, gt=0)
    ollama_unload_timeout_s: float = setting(600.0, gt=0)  # the unload waits for a running answer
    ollama_shares_device: bool = False  # hailo-ollama runs with HAILO_OLLAMA_VDEVICE_GROUP_ID=SHARED
    # door: every hailo-ollama client comes through hailo-vision's port, so its demand is seen
    ollama_clients: str = setting("direct", choices=("direct", "door"))
    vlm_idle_release_s: float = setting(120.0, gt=0)
    min_residency_s: float = setting(30.0, ge=0)
    max_wait_s: float = setting(60.0, gt=0)
    turn_timeout_s: float = setting(150.0, gt=0)
    clip_without_npu: str = setting("cpu", choices=("cpu", "wait", "refuse"))
    load_retry_initial_s: float = setting(1.0, gt=0)
    load_retry_max_s: float = setting(30.0, gt=0)


@dataclass(frozen=True)
class Config:
    backend: str = setting("onnx", choices=("onnx", "hailo", "auto"))
    model: ModelConfig = field(default_factory=ModelConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    hailo: HailoConfig = field(default_factory=HailoConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    source: str = "<defaults>"  # the file it was read from

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Config:
        data = json.loads(text)
        return _build(data, data.get("source", "<resolved>"), {})


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


def _keys(cls: type) -> dict[str, tuple[Any, Rule | None]]:
    """Each key of a section (or of the top level): its type and its rule."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("rule")) for f in fields(cls) if f.name != "source"}


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def env_variables() -> dict[str, str]:
    """Every override variable and the key it sets: HAILO_VISION_API_PORT -> "api.port"."""
    names: dict[str, str] = {}
    for name, (kind, _) in _keys(Config).items():
        for key in _keys(kind) if _is_section(kind) else ("",):
            dotted = f"{name}.{key}" if key else name
            names[ENV_PREFIX + dotted.replace(".", "_").upper()] = dotted
    return names


def _check_environment(env: Mapping[str, str]) -> None:
    known = env_variables()
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and name not in NON_KEY_VARIABLES:
            raise ConfigError(
                f"environment {name}: names no configuration key (overrides are "
                f"{ENV_PREFIX}<SECTION>_<KEY>, e.g. {ENV_PREFIX}API_PORT; see etc/config.yaml)"
            )


def _build_keys(cls: type, raw: Mapping[str, Any], prefix: str, source: str, env: Mapping[str, str]) -> Any:
    """An instance of `cls` (a section, or the whole Config) from its file mapping and the environment."""
    known = _keys(cls)
    for key in raw:
        if key not in known and not (cls is Config and key == "source"):
            shown = f"{prefix}{key}" if prefix else repr(key)
            scope = f" in {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"{source}: unknown key {shown} (known{scope}: {', '.join(sorted(known))})")
    defaults = cls()
    values: dict[str, Any] = {}
    for key, (annotation, rule) in known.items():
        dotted = f"{prefix}{key}"
        if _is_section(annotation):
            section = raw.get(key) or {}
            if not isinstance(section, dict):
                raise ConfigError(f"{source}: {dotted}: expected a mapping, got {section!r}")
            values[key] = _build_keys(annotation, section, f"{dotted}.", source, env)
            continue
        env_name = ENV_PREFIX + dotted.replace(".", "_").upper()
        if env_name in env:
            where, value = (
                f"environment {env_name}",
                _coerce(env[env_name], annotation, f"environment {env_name}"),
            )
        else:
            where = f"{source}: {dotted}"
            value = getattr(defaults, key) if raw.get(key) is None else _coerce(raw[key], annotation, where)
        reason = rule.violation(value) if rule is not None else None
        if reason:
            raise ConfigError(f"{where}: {reason}")
        values[key] = value
    return cls(**values)


def _build(data: Any, source: str, env: Mapping[str, str]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    config: Config = _build_keys(Config, data, "", source, env)
    return dataclasses.replace(config, source=source)


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
    _check_environment(environ)
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
