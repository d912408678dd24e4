"""pyhailort.py's exception classes and ExceptionWrapper, with the real names, messages and mapping.

They live outside `hailo_platform` (which re-exports them) so that re-importing hailo_platform for
another mimicked version keeps each release's exception classes identical.

The real Python layer wraps most native calls in `with ExceptionWrapper():`, which turns
HailoRTStatusException('<n>') into an indicative subclass for a few statuses (e.g. status 2 becomes
HailoRTInvalidArgumentException("Invalid argument. See hailort.log for more information")) and into
HailoRTException("libhailort failed with error: <n> (<NAME>)") for all others. Calls the real code
does not wrap (VLM/LLM/Text2Image construction, VLM.release, VDevice.release, the completion's
release) let the raw HailoRTStatusException('<n>') through; the double's classes wrap exactly where
the real ones do.

Which HailoRTException the indicative classes derive from depends on the release (the classes are
made once per layout, see python_exceptions()):
- 5.0.0 .. 5.1.1: pyhailort.py defines its own `class HailoRTException(Exception)` (v5.0.1:48,
  v5.1.1:45), unrelated to the native classes: `except hailo_platform.HailoRTException` does not catch
  a raw HailoRTStatusException;
- 5.2.0: pyhailort.py imports HailoRTException from _pyhailort (v5.2.0:21), the native base of
  HailoRTStatusException, so the same `except` catches both.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from hailo_double_tools.native import LAYOUTS, NativeExceptions, native_exceptions
from hailo_double_tools.native import get_status_message as _native_status_message
from hailo_double_tools.settings import active_profile

PYTHON_MODULE = "hailo_platform.pyhailort.pyhailort"
# pyhailort.py's indicative classes (all direct subclasses of its HailoRTException).
CLASS_NAMES = (
    "InvalidProtocolVersionException",
    "HailoRTFirmwareControlFailedException",
    "HailoRTInvalidFrameException",
    "HailoRTUnsupportedOpcodeException",
    "HailoRTTimeout",
    "HailoRTStreamAborted",
    "HailoRTStreamAbortedByUser",
    "HailoRTInvalidOperationException",
    "HailoRTInvalidArgumentException",
    "HailoRTNotFoundException",
    "HailoRTInvalidHEFException",
    "HailoRTHEFNotCompatibleWithDevice",
    "HailoRTEthException",
    "HailoRTDriverOperationFailedException",
    "HailoRTNetworkGroupNotActivatedException",
    "HailoCommunicationClosedException",
)
# status name -> (class name, message), as ExceptionWrapper.create_exception_from_status has them.
INDICATIVE = {
    "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION": (
        "InvalidProtocolVersionException",
        "HailoRT has failed because an invalid protocol version was received from device",
    ),
    "HAILO_FW_CONTROL_FAILURE": (
        "HailoRTFirmwareControlFailedException",
        "libhailort control operation failed",
    ),
    "HAILO_UNSUPPORTED_OPCODE": (
        "HailoRTUnsupportedOpcodeException",
        "HailoRT has failed because an unsupported opcode was sent to device",
    ),
    "HAILO_INVALID_FRAME": ("HailoRTInvalidFrameException", "An invalid frame was received"),
    "HAILO_TIMEOUT": (
        "HailoRTTimeout",
        "Received a timeout - hailort has failed because a timeout had occurred",
    ),
    "HAILO_STREAM_ABORT": ("HailoRTStreamAborted", "Stream was aborted"),
    "HAILO_INVALID_OPERATION": (
        "HailoRTInvalidOperationException",
        "Invalid operation. See hailort.log for more information",
    ),
    "HAILO_INVALID_ARGUMENT": (
        "HailoRTInvalidArgumentException",
        "Invalid argument. See hailort.log for more information",
    ),
    "HAILO_NOT_FOUND": ("HailoRTNotFoundException", "Item not found. See hailort.log for more information"),
    "HAILO_INVALID_HEF": ("HailoRTInvalidHEFException", "Invalid HEF. See hailort.log for more information"),
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": (
        "HailoRTHEFNotCompatibleWithDevice",
        "HEF file is not compatible with device. See hailort.log for more information",
    ),
    "HAILO_ETH_FAILURE": ("HailoRTEthException", "Ethernet failure. See hailort.log for more information"),
    "HAILO_DRIVER_OPERATION_FAILED": (
        "HailoRTDriverOperationFailedException",
        "Failure in hailort driver ioctl. run 'dmesg | grep hailo' for more information",
    ),
    "HAILO_COMMUNICATION_CLOSED": (
        "HailoCommunicationClosedException",
        "Communication closed failure. Check server-client connection",
    ),
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED": (
        "HailoRTNetworkGroupNotActivatedException",
        "Network group is not activated",
    ),
}


class HailoStatusInvalidValueException(Exception):
    pass


@dataclass(frozen=True)
class PythonExceptions:
    """pyhailort.py's HailoRTException and its indicative subclasses in one release."""

    native: NativeExceptions
    HailoRTException: type[Exception]
    classes: dict[str, type[Exception]]


def _define(native: NativeExceptions, own_base: bool) -> PythonExceptions:
    def exception(name: str, base: type[Exception]) -> type[Exception]:
        return type(name, (base,), {"__module__": PYTHON_MODULE})

    base = exception("HailoRTException", Exception) if own_base else native.HailoRTException
    return PythonExceptions(native, base, {name: exception(name, base) for name in CLASS_NAMES})


_LAYOUTS = {registered: _define(native, own_base=not registered) for registered, native in LAYOUTS.items()}


def python_exceptions() -> PythonExceptions:
    """The mimicked release's Python-layer exceptions."""
    return _LAYOUTS[active_profile().status_under_hailort_exception]


def get_status_message(status_code: int) -> str:
    status_str = _native_status_message(status_code)
    if status_str == "":
        raise HailoStatusInvalidValueException(f"Value {status_code} is not a valid status")
    return status_str


class ExceptionWrapper:
    """Context manager re-raising a native status error as the Python layer's exception."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if value is not None and exc_type is native_exceptions().HailoRTStatusException:
            raise self.create_exception_from_status(int(value.args[0])) from value

    @staticmethod
    def create_exception_from_status(error_code: int) -> Exception:
        name = get_status_message(error_code)
        layer = python_exceptions()
        if name in INDICATIVE:
            class_name, message = INDICATIVE[name]
            return layer.classes[class_name](message)
        return layer.HailoRTException(f"libhailort failed with error: {error_code} ({name})")
