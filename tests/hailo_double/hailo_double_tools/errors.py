"""pyhailort.py's exception classes and ExceptionWrapper, with the real names, messages and mapping.

They live outside `hailo_platform` (which re-exports them) so that re-importing hailo_platform for
another mimicked version keeps the exception classes identical.

The real Python layer wraps most native calls in `with ExceptionWrapper():`, which turns
HailoRTStatusException('<n>') into an indicative subclass for a few statuses (e.g. status 2 becomes
HailoRTInvalidArgumentException("Invalid argument. See hailort.log for more information")) and into
HailoRTException("libhailort failed with error: <n> (<NAME>)") for all others. Calls the real code
does not wrap (VLM/LLM construction) let the raw HailoRTStatusException('<n>') through; the double's
classes wrap exactly where the real ones do.
"""

from __future__ import annotations

from types import TracebackType

from hailo_double_tools.native import HailoRTException, HailoRTStatusException
from hailo_double_tools.native import get_status_message as _native_status_message


class InvalidProtocolVersionException(HailoRTException):
    pass


class HailoRTFirmwareControlFailedException(HailoRTException):
    pass


class HailoRTInvalidFrameException(HailoRTException):
    pass


class HailoRTUnsupportedOpcodeException(HailoRTException):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTStreamAborted(HailoRTException):
    pass


class HailoRTStreamAbortedByUser(HailoRTException):
    pass


class HailoRTInvalidOperationException(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTHEFNotCompatibleWithDevice(HailoRTException):
    pass


class HailoRTEthException(HailoRTException):
    pass


class HailoRTDriverOperationFailedException(HailoRTException):
    pass


HailoRTPCIeDriverException = HailoRTDriverOperationFailedException


class HailoRTNetworkGroupNotActivatedException(HailoRTException):
    pass


class HailoCommunicationClosedException(HailoRTException):
    pass


class HailoStatusInvalidValueException(Exception):
    pass


_INDICATIVE = {
    "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION": (
        InvalidProtocolVersionException,
        "HailoRT has failed because an invalid protocol version was received from device",
    ),
    "HAILO_FW_CONTROL_FAILURE": (
        HailoRTFirmwareControlFailedException,
        "libhailort control operation failed",
    ),
    "HAILO_UNSUPPORTED_OPCODE": (
        HailoRTUnsupportedOpcodeException,
        "HailoRT has failed because an unsupported opcode was sent to device",
    ),
    "HAILO_INVALID_FRAME": (HailoRTInvalidFrameException, "An invalid frame was received"),
    "HAILO_TIMEOUT": (
        HailoRTTimeout,
        "Received a timeout - hailort has failed because a timeout had occurred",
    ),
    "HAILO_STREAM_ABORT": (HailoRTStreamAborted, "Stream was aborted"),
    "HAILO_INVALID_OPERATION": (
        HailoRTInvalidOperationException,
        "Invalid operation. See hailort.log for more information",
    ),
    "HAILO_INVALID_ARGUMENT": (
        HailoRTInvalidArgumentException,
        "Invalid argument. See hailort.log for more information",
    ),
    "HAILO_NOT_FOUND": (HailoRTNotFoundException, "Item not found. See hailort.log for more information"),
    "HAILO_INVALID_HEF": (HailoRTInvalidHEFException, "Invalid HEF. See hailort.log for more information"),
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": (
        HailoRTHEFNotCompatibleWithDevice,
        "HEF file is not compatible with device. See hailort.log for more information",
    ),
    "HAILO_ETH_FAILURE": (HailoRTEthException, "Ethernet failure. See hailort.log for more information"),
    "HAILO_DRIVER_OPERATION_FAILED": (
        HailoRTDriverOperationFailedException,
        "Failure in hailort driver ioctl. run 'dmesg | grep hailo' for more information",
    ),
    "HAILO_COMMUNICATION_CLOSED": (
        HailoCommunicationClosedException,
        "Communication closed failure. Check server-client connection",
    ),
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED": (
        HailoRTNetworkGroupNotActivatedException,
        "Network group is not activated",
    ),
}


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
        if value is not None and exc_type is HailoRTStatusException:
            raise self.create_exception_from_status(int(value.args[0])) from value

    @staticmethod
    def create_exception_from_status(error_code: int) -> HailoRTException:
        name = get_status_message(error_code)
        if name in _INDICATIVE:
            exception_class, message = _INDICATIVE[name]
            return exception_class(message)
        return HailoRTException(f"libhailort failed with error: {error_code} ({name})")
