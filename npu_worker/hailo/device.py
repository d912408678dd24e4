"""Open HailoRT and its VDevice, and turn HailoRT's exceptions into the backend's error classes.

HailoRT raises HailoRTException subclasses whose message carries the status, e.g.
"libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)". What the worker must do differs:
- the device is held by another process -> DeviceBusyError (the engine retries the load);
- a HEF is missing, malformed or built for another device -> ModelLoadError naming the file;
- the device refuses a request's parameters -> InvalidRequestError (400, the worker carries on);
- anything else while working (device lost, driver failure, timeout) -> DeviceFailedError: the
  worker exits and the supervisor starts a fresh one, which reopens the device.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from npu_worker.backend import DeviceBusyError, DeviceFailedError, InvalidRequestError, ModelLoadError
from npu_worker.hailo.holders import describe_holders, scan_holders

BUSY_STATUSES = frozenset({"HAILO_OUT_OF_PHYSICAL_DEVICES", "HAILO_DEVICE_IN_USE"})
# GenAI models cannot share the device's KV cache; HailoRT's server logs this text.
BUSY_TEXTS = ("kv-cache is already in use", "already in use by another model")
HEF_STATUSES = frozenset(
    {
        "HAILO_INVALID_HEF",
        "HAILO_HEF_NOT_SUPPORTED",
        "HAILO_HEF_FILE_CORRUPTED",
        "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
        "HAILO_INVALID_HEF_USE",
        "HAILO_OPEN_FILE_FAILURE",
        "HAILO_FILE_OPERATION_FAILURE",
    }
)
REQUEST_STATUSES = frozenset({"HAILO_INVALID_ARGUMENT"})
# pyhailort raises these classes with generic messages that do not name the status.
STATUS_OF_CLASS = {
    "HailoRTInvalidHEFException": "HAILO_INVALID_HEF",
    "HailoRTHEFNotCompatibleWithDevice": "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
    "HailoRTInvalidArgumentException": "HAILO_INVALID_ARGUMENT",
    "HailoRTInvalidOperationException": "HAILO_INVALID_OPERATION",
    "HailoRTNotFoundException": "HAILO_NOT_FOUND",
    "HailoRTTimeout": "HAILO_TIMEOUT",
    "HailoRTStreamAborted": "HAILO_STREAM_ABORT",
    "HailoRTDriverOperationFailedException": "HAILO_DRIVER_OPERATION_FAILED",
    "HailoCommunicationClosedException": "HAILO_COMMUNICATION_CLOSED",
}
_STATUS_IN_TEXT = re.compile(r"\b(HAILO_[A-Z0-9_]+)\b")
_CODE_IN_TEXT = re.compile(r"error:?\s*(\d+)")
# hailort.h numbers of the statuses told apart here. A failing native call raises
# HailoRTStatusException('<number>'); model constructors are not wrapped, so they raise it raw.
_STATUS_OF_CODE = {
    2: "HAILO_INVALID_ARGUMENT",
    6: "HAILO_INVALID_OPERATION",
    13: "HAILO_OPEN_FILE_FAILURE",
    14: "HAILO_FILE_OPERATION_FAILURE",
    26: "HAILO_INVALID_HEF",
    73: "HAILO_DEVICE_IN_USE",
    74: "HAILO_OUT_OF_PHYSICAL_DEVICES",
    91: "HAILO_HEF_FILE_CORRUPTED",
    92: "HAILO_HEF_NOT_SUPPORTED",
    93: "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
    94: "HAILO_INVALID_HEF_USE",
}


def _status_code(exc: BaseException | None) -> int | None:
    """The status number a native exception carries as its only argument ('74' or 74)."""
    args: tuple[object, ...] = getattr(exc, "args", ())
    value = str(args[0]).strip() if len(args) == 1 and isinstance(args[0], (int, str)) else ""
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class HailoModules:
    platform: ModuleType  # hailo_platform
    genai: ModuleType  # hailo_platform.genai

    @property
    def exception(self) -> type[BaseException]:
        exception: type[BaseException] = self.platform.HailoRTException
        return exception


def import_hailo() -> HailoModules:
    """hailo_platform and its genai module, or a ModelLoadError saying how to get them."""
    try:
        platform = importlib.import_module("hailo_platform")
    except ImportError as exc:
        raise ModelLoadError(
            f"backend hailo needs HailoRT's Python package hailo_platform (5.x) in this Python environment "
            f"({exc}); install Hailo's hailort wheel, or run `hailo-vision doctor`"
        ) from exc
    try:
        genai = importlib.import_module("hailo_platform.genai")
    except ImportError as exc:
        version = getattr(platform, "__version__", "unknown")
        raise ModelLoadError(
            f"HailoRT {version} has no GenAI API (hailo_platform.genai, HailoRT 5.0.1 and later): {exc}"
        ) from exc
    return HailoModules(platform, genai)


def status_name(exc: BaseException) -> str | None:
    """The HAILO_* status an exception stands for: from its class, its text, or its status number."""
    for cls in type(exc).__mro__:
        if cls.__name__ in STATUS_OF_CLASS:
            return STATUS_OF_CLASS[cls.__name__]
    text = str(exc)
    if match := _STATUS_IN_TEXT.search(text):
        return match.group(1)
    code = _status_code(exc)
    if code is None:
        code = _status_code(exc.__cause__)
    if code is None and (match := _CODE_IN_TEXT.search(text)):
        code = int(match.group(1))
    return _STATUS_OF_CODE.get(code, f"status {code}") if code is not None else None


def is_busy(exc: BaseException) -> bool:
    return status_name(exc) in BUSY_STATUSES or any(t in str(exc).lower() for t in BUSY_TEXTS)


def busy_error(exc: BaseException) -> DeviceBusyError:
    kv_cache = "; its GenAI KV cache is taken by another LLM/VLM" if not is_busy(exc) else ""
    holders = describe_holders(scan_holders())
    return DeviceBusyError(
        f"the Hailo device is in use by another process{kv_cache}"
        f"{f' (held by {holders})' if holders else ''}: {exc}; hailo-vision retries until it is free "
        "(hailo-ollama frees it after keep_alive, or at once with curl -X POST "
        'localhost:8000/api/generate -d \'{"model": "<model>", "keep_alive": 0}\')'
    )


@contextmanager
def load_errors(hailo: HailoModules, path: Path, what: str, genai_model: bool = False) -> Iterator[None]:
    """Translate HailoRT failures while loading `what` from `path`.

    A GenAI model that cannot get the device's single KV cache (another process has an LLM or VLM
    loaded) fails with a plain HAILO_INVALID_OPERATION: the "KV-Cache is already in use" text only
    reaches hailort.log. Nothing else makes model creation fail with that status, so for a GenAI
    model it is read as busy: the worker waits and retries instead of restarting.
    """
    try:
        yield
    except hailo.exception as exc:
        status = status_name(exc)
        if is_busy(exc) or (genai_model and status == "HAILO_INVALID_OPERATION"):
            raise busy_error(exc) from exc
        hint = " (is it a HEF for this HailoRT version and for Hailo-10H?)" if status in HEF_STATUSES else ""
        raise ModelLoadError(f"{path}: HailoRT cannot load this {what} HEF{hint}: {exc}") from exc


@contextmanager
def work_errors(hailo: HailoModules, what: str) -> Iterator[None]:
    """Translate HailoRT failures while the device works on a request."""
    try:
        yield
    except hailo.exception as exc:
        if status_name(exc) in REQUEST_STATUSES:
            raise InvalidRequestError(f"the Hailo device refused the {what} request: {exc}") from exc
        raise DeviceFailedError(f"the Hailo device failed during {what}: {exc}") from exc


def open_vdevice(hailo: HailoModules, group_id: str) -> Any:
    """A VDevice in `group_id` (SHARED lets the VLM and CLIP HEFs of this process share the chip)."""
    params = hailo.platform.VDevice.create_params()
    params.group_id = group_id
    try:
        return hailo.platform.VDevice(params)
    except hailo.exception as exc:
        if is_busy(exc):
            raise busy_error(exc) from exc
        raise DeviceFailedError(f"cannot open the Hailo device: {exc}") from exc
