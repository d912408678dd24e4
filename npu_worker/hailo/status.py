"""Which HailoRT status an exception stands for, whichever layer raised it and whichever release.

HailoRT raises three kinds of exception for one failing call:
- the native HailoRTStatusException('<number>'), raw where pyhailort.py does not wrap the call
  (VLM(...), the releases); on 5.0.1-5.1.1 it is no hailo_platform.HailoRTException;
- pyhailort.py's indicative classes (HailoRTTimeout, HailoRTInvalidHEFException, ...) whose generic
  messages do not name the status; ExceptionWrapper chains the native one as their __cause__, the
  async-inference callback does not;
- HailoRTException("libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)") for the rest.
Python-side checks (e.g. "frames must be a list of numpy arrays") carry no status at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# pyhailort.py's indicative classes, by the status ExceptionWrapper raises them for.
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
    "HailoRTFirmwareControlFailedException": "HAILO_FW_CONTROL_FAILURE",
    "HailoRTNetworkGroupNotActivatedException": "HAILO_NETWORK_GROUP_NOT_ACTIVATED",
}
_STATUS_IN_TEXT = re.compile(r"\b(HAILO_[A-Z0-9_]+)\b")
_CODE_IN_TEXT = re.compile(r"libhailort failed with error: (\d+)")


@dataclass(frozen=True)
class HailoStatus:
    name: str  # e.g. HAILO_OUT_OF_PHYSICAL_DEVICES
    code: int | None  # e.g. 74, where the exception carries it

    def __str__(self) -> str:
        return f"{self.code} {self.name}" if self.code is not None else self.name


def _native_code(exc: BaseException | None) -> int | None:
    """The number a native status exception carries as its only argument ('74')."""
    args: tuple[object, ...] = getattr(exc, "args", ())
    value = str(args[0]).strip() if len(args) == 1 and isinstance(args[0], int | str) else ""
    return int(value) if value.isdigit() else None


def status_of(exc: BaseException, name_of: Callable[[int], str]) -> HailoStatus | None:
    """The status behind `exc`, or None; `name_of` is the library's get_status_message."""
    code = _native_code(exc)
    if code is None:
        code = _native_code(exc.__cause__)
    if code is None and (match := _CODE_IN_TEXT.search(str(exc))):
        code = int(match.group(1))
    if code is not None and (name := name_of(code)):
        return HailoStatus(name, code)
    for cls in type(exc).__mro__:
        if cls.__name__ in STATUS_OF_CLASS:
            return HailoStatus(STATUS_OF_CLASS[cls.__name__], None)
    if match := _STATUS_IN_TEXT.search(str(exc)):
        return HailoStatus(match.group(1), None)
    return None


def describe(exc: BaseException, status: HailoStatus | None) -> str:
    """The exception for a message, its status named (a raw native one's str() is only the number)."""
    text = str(exc)
    if status is not None and status.name not in text:
        text = f"status {status}" if text == str(status.code) else f"{text} (status {status})"
    return f"{type(exc).__name__}: {text}"
