"""The real wheel's native extension module path; the double's native layer lives in hailo_double_tools."""

from hailo_double_tools.native import (
    FormatOrder,
    FormatType,
    LLMGeneratorCompletionStatus,
    QuantInfo,
    SchedulingAlgorithm,
    TemperatureInfo,
    VDeviceParams,
    get_status_message,
    native_exceptions,
)
from hailo_double_tools.settings import active_profile

__version__ = active_profile().version
_registered = native_exceptions()
HailoRTException = _registered.HailoRTException
HailoRTCustomException = _registered.HailoRTCustomException
HailoRTStatusException = _registered.HailoRTStatusException

__all__ = [
    "FormatOrder",
    "FormatType",
    "HailoRTCustomException",
    "HailoRTException",
    "HailoRTStatusException",
    "LLMGeneratorCompletionStatus",
    "QuantInfo",
    "SchedulingAlgorithm",
    "TemperatureInfo",
    "VDeviceParams",
    "__version__",
    "get_status_message",
]
