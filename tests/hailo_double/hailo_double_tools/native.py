"""The double's native layer: what HailoRT's pybind11 extension `_pyhailort` provides.

hailo_platform.pyhailort._pyhailort re-exports it under the real module path. It holds the
exception classes (a failing native call raises HailoRTStatusException whose only argument is the
status number as a string, exactly like the real bindings' VALIDATE_STATUS), the status table of
hailort.h (HailoRT 5.2.0), the enums FormatType, FormatOrder, SchedulingAlgorithm and
LLMGeneratorCompletionStatus with the real numeric values, and the plain records TemperatureInfo,
QuantInfo and VDeviceParams.

The native exception classes come in two layouts, per mimicked release (pyhailort.cpp):
- 5.0.0 .. 5.1.1 (v5.0.1:976-978, v5.1.1:874-876): HailoRTException, HailoRTCustomException and
  HailoRTStatusException are each registered with no base, so each derives from Exception only;
- 5.2.0 (v5.2.0:880-882): HailoRTCustomException and HailoRTStatusException are registered under
  HailoRTException.
`native_exceptions()` is the layout of the active profile; each layout's classes are created once,
so re-importing hailo_platform for the same release keeps them identical.

`fail()` is how the double's "device side" reports an error: it writes the C++ library's log line to
the `hailort` logger (the real library writes it to hailort.log) and raises the status exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from hailo_double_tools.settings import active_profile

log = logging.getLogger("hailort")

# hailort.h HAILO_STATUS_VARIABLES, in order: the status number is the index.
_STATUS_NAMES = [
    "HAILO_SUCCESS",
    "HAILO_UNINITIALIZED",
    "HAILO_INVALID_ARGUMENT",
    "HAILO_OUT_OF_HOST_MEMORY",
    "HAILO_TIMEOUT",
    "HAILO_INSUFFICIENT_BUFFER",
    "HAILO_INVALID_OPERATION",
    "HAILO_NOT_IMPLEMENTED",
    "HAILO_INTERNAL_FAILURE",
    "HAILO_DATA_ALIGNMENT_FAILURE",
    "HAILO_CHUNK_TOO_LARGE",
    "HAILO_INVALID_LOGGER_LEVEL",
    "HAILO_CLOSE_FAILURE",
    "HAILO_OPEN_FILE_FAILURE",
    "HAILO_FILE_OPERATION_FAILURE",
    "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION",
    "HAILO_UNSUPPORTED_FW_VERSION",
    "HAILO_INVALID_CONTROL_RESPONSE",
    "HAILO_FW_CONTROL_FAILURE",
    "HAILO_ETH_FAILURE",
    "HAILO_ETH_INTERFACE_NOT_FOUND",
    "HAILO_ETH_RECV_FAILURE",
    "HAILO_ETH_SEND_FAILURE",
    "HAILO_INVALID_FIRMWARE",
    "HAILO_INVALID_CONTEXT_COUNT",
    "HAILO_INVALID_FRAME",
    "HAILO_INVALID_HEF",
    "HAILO_PCIE_NOT_SUPPORTED_ON_PLATFORM",
    "HAILO_INTERRUPTED_BY_SIGNAL",
    "HAILO_START_VDMA_CHANNEL_FAIL",
    "HAILO_SYNC_VDMA_BUFFER_FAIL",
    "HAILO_STOP_VDMA_CHANNEL_FAIL",
    "HAILO_CLOSE_VDMA_CHANNEL_FAIL",
    "HAILO_ATR_TABLES_CONF_VALIDATION_FAIL",
    "HAILO_EVENT_CREATE_FAIL",
    "HAILO_READ_EVENT_FAIL",
    "HAILO_DRIVER_OPERATION_FAILED",
    "HAILO_INVALID_FIRMWARE_MAGIC",
    "HAILO_INVALID_FIRMWARE_CODE_SIZE",
    "HAILO_INVALID_KEY_CERTIFICATE_SIZE",
    "HAILO_INVALID_CONTENT_CERTIFICATE_SIZE",
    "HAILO_MISMATCHING_FIRMWARE_BUFFER_SIZES",
    "HAILO_INVALID_FIRMWARE_CPU_ID",
    "HAILO_CONTROL_RESPONSE_MD5_MISMATCH",
    "HAILO_GET_CONTROL_RESPONSE_FAIL",
    "HAILO_GET_D2H_EVENT_MESSAGE_FAIL",
    "HAILO_MUTEX_INIT_FAIL",
    "HAILO_OUT_OF_DESCRIPTORS",
    "HAILO_UNSUPPORTED_OPCODE",
    "HAILO_USER_MODE_RATE_LIMITER_NOT_SUPPORTED",
    "HAILO_RATE_LIMIT_MAXIMUM_BANDWIDTH_EXCEEDED",
    "HAILO_ANSI_TO_UTF16_CONVERSION_FAILED",
    "HAILO_UTF16_TO_ANSI_CONVERSION_FAILED",
    "HAILO_UNEXPECTED_INTERFACE_INFO_FAILURE",
    "HAILO_UNEXPECTED_ARP_TABLE_FAILURE",
    "HAILO_MAC_ADDRESS_NOT_FOUND",
    "HAILO_NO_IPV4_INTERFACES_FOUND",
    "HAILO_SHUTDOWN_EVENT_SIGNALED",
    "HAILO_THREAD_ALREADY_ACTIVATED",
    "HAILO_THREAD_NOT_ACTIVATED",
    "HAILO_THREAD_NOT_JOINABLE",
    "HAILO_NOT_FOUND",
    "HAILO_COMMUNICATION_CLOSED",
    "HAILO_STREAM_ABORT",
    "HAILO_DRIVER_NOT_INSTALLED",
    "HAILO_NOT_AVAILABLE",
    "HAILO_TRAFFIC_CONTROL_FAILURE",
    "HAILO_INVALID_SECOND_STAGE",
    "HAILO_INVALID_PIPELINE",
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED",
    "HAILO_VSTREAM_PIPELINE_NOT_ACTIVATED",
    "HAILO_OUT_OF_FW_MEMORY",
    "HAILO_STREAM_NOT_ACTIVATED",
    "HAILO_DEVICE_IN_USE",
    "HAILO_OUT_OF_PHYSICAL_DEVICES",
    "HAILO_INVALID_DEVICE_ARCHITECTURE",
    "HAILO_INVALID_DRIVER_VERSION",
    "HAILO_RPC_FAILED",
    "HAILO_INVALID_SERVICE_VERSION",
    "HAILO_NOT_SUPPORTED",
    "HAILO_NMS_BURST_INVALID_DATA",
    "HAILO_OUT_OF_HOST_CMA_MEMORY",
    "HAILO_QUEUE_IS_FULL",
    "HAILO_DMA_MAPPING_ALREADY_EXISTS",
    "HAILO_CANT_MEET_BUFFER_REQUIREMENTS",
    "HAILO_DRIVER_INVALID_RESPONSE",
    "HAILO_DRIVER_INVALID_IOCTL",
    "HAILO_DRIVER_TIMEOUT",
    "HAILO_DRIVER_INTERRUPTED",
    "HAILO_CONNECTION_REFUSED",
    "HAILO_DRIVER_WAIT_CANCELED",
    "HAILO_HEF_FILE_CORRUPTED",
    "HAILO_HEF_NOT_SUPPORTED",
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
    "HAILO_INVALID_HEF_USE",
    "HAILO_OPERATION_ABORTED",
    "HAILO_DEVICE_NOT_CONNECTED",
    "HAILO_DEVICE_TEMPORARILY_UNAVAILABLE",
]

STATUS = {name: number for number, name in enumerate(_STATUS_NAMES)}
HAILO_INVALID_ARGUMENT = STATUS["HAILO_INVALID_ARGUMENT"]
HAILO_TIMEOUT = STATUS["HAILO_TIMEOUT"]
HAILO_INVALID_OPERATION = STATUS["HAILO_INVALID_OPERATION"]
HAILO_INTERNAL_FAILURE = STATUS["HAILO_INTERNAL_FAILURE"]
HAILO_OPEN_FILE_FAILURE = STATUS["HAILO_OPEN_FILE_FAILURE"]
HAILO_INVALID_HEF = STATUS["HAILO_INVALID_HEF"]
HAILO_NOT_FOUND = STATUS["HAILO_NOT_FOUND"]
HAILO_NOT_AVAILABLE = STATUS["HAILO_NOT_AVAILABLE"]
HAILO_OUT_OF_PHYSICAL_DEVICES = STATUS["HAILO_OUT_OF_PHYSICAL_DEVICES"]
HAILO_NOT_SUPPORTED = STATUS["HAILO_NOT_SUPPORTED"]
HAILO_HEF_NOT_SUPPORTED = STATUS["HAILO_HEF_NOT_SUPPORTED"]


NATIVE_MODULE = "hailo_platform.pyhailort._pyhailort"


@dataclass(frozen=True)
class NativeExceptions:
    """The exception classes the bindings register (py::register_exception) in one release."""

    HailoRTException: type[Exception]
    HailoRTCustomException: type[Exception]  # a native error with a free-text message
    HailoRTStatusException: type[Exception]  # args[0] is the hailo_status number as a string


def _register(under_hailort_exception: bool) -> NativeExceptions:
    def exception(name: str, base: type[Exception]) -> type[Exception]:
        return type(name, (base,), {"__module__": NATIVE_MODULE})

    base = exception("HailoRTException", Exception)
    parent = base if under_hailort_exception else Exception
    return NativeExceptions(
        base, exception("HailoRTCustomException", parent), exception("HailoRTStatusException", parent)
    )


# Keyed by VersionProfile.status_under_hailort_exception.
LAYOUTS = {registered: _register(registered) for registered in (False, True)}
# Every release's status exception, for the double's own code that must catch one whatever the release.
STATUS_EXCEPTIONS = tuple(layout.HailoRTStatusException for layout in LAYOUTS.values())


def native_exceptions() -> NativeExceptions:
    """The native exception classes of the mimicked release."""
    return LAYOUTS[active_profile().status_under_hailort_exception]


def get_status_message(status: int) -> str:
    """The status's name, or '' for a number outside the table (like hailo_get_status_message)."""
    return _STATUS_NAMES[status] if 0 <= status < len(_STATUS_NAMES) else ""


def fail(status: int, message: str) -> NoReturn:
    """Log the C++ library's message and raise the status the real bindings would raise."""
    log.error("%s (status %d %s)", message, status, get_status_message(status))
    raise native_exceptions().HailoRTStatusException(str(status))


class _NativeEnum(Enum):
    """pybind11-style enum: str() is 'Type.NAME', int() gives the C value."""

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return int(self.value)

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class FormatType(_NativeEnum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(_NativeEnum):
    AUTO = 0
    NHWC = 1
    NHCW = 2
    FCR = 3
    F8CR = 4
    NHW = 5
    NC = 6
    NCHW = 11
    HAILO_NMS_WITH_BYTE_MASK = 20
    HAILO_NMS_BY_CLASS = 22
    HAILO_NMS_BY_SCORE = 23


class SchedulingAlgorithm(_NativeEnum):
    NONE = 0
    ROUND_ROBIN = 1


class LLMGeneratorCompletionStatus(_NativeEnum):
    """genai::LLMGeneratorCompletion::Status (llm.hpp): GENERATING is 0, then this order."""

    GENERATING = 0
    MAX_TOKENS_REACHED = 1
    LOGICAL_END_OF_GENERATION = 2
    ABORTED = 3


class TemperatureInfo:
    """hailo_chip_temperature_info_t: read-only sensor values in degrees Celsius."""

    def __init__(self, ts0_temperature: float, ts1_temperature: float, sample_count: int) -> None:
        self._values = (ts0_temperature, ts1_temperature, sample_count)

    @property
    def ts0_temperature(self) -> float:
        return self._values[0]

    @property
    def ts1_temperature(self) -> float:
        return self._values[1]

    @property
    def sample_count(self) -> int:
        return self._values[2]


class QuantInfo:
    """hailo_quant_info_t: dequantised = (q - qp_zp) * qp_scale."""

    def __init__(
        self, qp_zp: float = 0.0, qp_scale: float = 1.0, limvals_min: float = 0.0, limvals_max: float = 0.0
    ) -> None:
        self.qp_zp = qp_zp
        self.qp_scale = qp_scale
        self.limvals_min = limvals_min
        self.limvals_max = limvals_max

    def __repr__(self) -> str:
        return f"QuantInfo(qp_zp={self.qp_zp}, qp_scale={self.qp_scale})"


HAILO_UNIQUE_VDEVICE_GROUP_ID = "UNIQUE"


class VDeviceParams:
    """hailo_vdevice_params_t as the bindings expose it; `default()` is what create_params() returns."""

    def __init__(self) -> None:
        self.device_ids: list[str] | None = None
        self.device_count = 1
        self.scheduling_algorithm = SchedulingAlgorithm.ROUND_ROBIN
        self.group_id = HAILO_UNIQUE_VDEVICE_GROUP_ID
        self.multi_process_service = False

    @staticmethod
    def default() -> VDeviceParams:
        return VDeviceParams()
