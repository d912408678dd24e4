"""Every state of hailo-vision's processes and of the NPU, defined once.

The worker's, the API's and the whole service's states, the supervisor's children, the degradation
ladder's rungs and the NPU's owner: the values travel in npu_worker.protocol's messages and appear
in /health, /metrics, the logs and systemd's STATUS=, always as these enums' values.
"""

from __future__ import annotations

from enum import StrEnum


class WorkerState(StrEnum):
    """The NPU worker's models: where they are on the way between the device and released."""

    STARTING = "starting"  # loading what needs no device (tokenizers, CPU encoders)
    LOADING = "loading"  # taking the device and loading the models
    READY = "ready"  # the models are loaded; requests are served
    NPU_BUSY = "npu_busy"  # another process holds the device; the load is retried with backoff
    RELEASED = "released"  # the device was given back (idle or asked to); CPU parts stay loaded
    FAILED = "failed"


class ApiState(StrEnum):
    STARTING = "starting"
    LISTENING = "listening"
    DRAINING = "draining"


class Role(StrEnum):
    """The supervisor's children."""

    API = "api"
    WORKER = "worker"


class ServiceState(StrEnum):
    """What /health and `hailo-visionctl status` say of the whole service."""

    READY = "ready"
    DEGRADED = "degraded"  # serving, but slower or with less (see the degradation rung)
    LOADING = "loading"
    UNAVAILABLE = "unavailable"
    DRAINING = "draining"


class Rung(StrEnum):
    """The degradation ladder, from nothing lost to everything paused (docs/ARCHITECTURE.md)."""

    NORMAL = "normal"
    QUEUEING = "queueing"  # requests wait for hailo-vision's turn on the NPU
    CPU_FALLBACK = "cpu_fallback"  # CLIP runs on the CPU while the NPU is not hailo-vision's
    CAPPED = "capped"  # warm: shorter answers, smaller CLIP batches, a pause between generations
    SHEDDING = "shedding"  # memory tight: caches shrunk, CPU fallback and new loads refused
    CLIP_ONLY = "clip_only"  # memory critical: the VLM given back, generations refused
    PAUSED = "paused"  # too hot: inference paused until it cools

    @property
    def severity(self) -> int:
        return list(Rung).index(self)

    @property
    def degraded(self) -> bool:
        """Serving with less than the NPU's full service: the service's state says `degraded`."""
        return self.severity >= Rung.CPU_FALLBACK.severity


class NpuOwner(StrEnum):
    """Who holds the Hailo-10H now."""

    NOBODY = "nobody"
    HAILO_VISION = "hailo-vision"
    HAILO_OLLAMA = "hailo-ollama"
    UNKNOWN = "unknown"
