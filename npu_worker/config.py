"""hailo-vision configuration: every key, declared once with its type, default and rule side by side.

`setting` puts a key's rule beside its default; npu_worker.config_load reads the file and the
`HAILO_VISION_<SECTION>_<KEY>` overrides into these sections and holds each value to its rule.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_MODELS = REPO_ROOT / "models" / "demo"
# $HAILO_VISION_BACKEND_FACTORY=module:callable builds the backend instead (benchmarks and tests only).
FACTORY_ENV = "HAILO_VISION_BACKEND_FACTORY"
# $HAILO_VISION_DEVICE_DIR: where the Hailo device nodes are (default /dev; tests: the double's).
DEVICE_DIR_ENV = "HAILO_VISION_DEVICE_DIR"


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
        """The whole configuration for a child process (read back with config_load.config_from_json)."""
        return json.dumps(dataclasses.asdict(self))
