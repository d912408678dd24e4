"""The real wheel's `hailo_platform.pyhailort.pyhailort` module: every public class, one import path.

The double splits the implementation over private modules; this module gathers them under the real
path so `from hailo_platform.pyhailort.pyhailort import VLM` works as on the device. LLM, VLM,
Speech2Text, Speech2TextTask, Text2Image and HailoDiffuserSchedulerType exist only in the versions
that have them. Only names the real module
has are here: LLMGeneratorCompletionStatus, QuantInfo and VDeviceParams live in `_pyhailort` only.
"""

from hailo_double_tools.native import (
    HAILO_UNIQUE_VDEVICE_GROUP_ID,
    FormatOrder,
    FormatType,
    TemperatureInfo,
)
from hailo_double_tools.native import SchedulingAlgorithm as HailoSchedulingAlgorithm
from hailo_platform.pyhailort._device import (
    BoardInformation,
    Control,
    Device,
    DeviceArchitectureTypes,
    HailoFirmwareMode,
    HailoFirmwareType,
    HailoFirmwareVersion,
    VDevice,
)
from hailo_platform.pyhailort._errors import (
    ExceptionWrapper,
    HailoCommunicationClosedException,
    HailoRTDriverOperationFailedException,
    HailoRTEthException,
    HailoRTException,
    HailoRTFirmwareControlFailedException,
    HailoRTHEFNotCompatibleWithDevice,
    HailoRTInvalidArgumentException,
    HailoRTInvalidFrameException,
    HailoRTInvalidHEFException,
    HailoRTInvalidOperationException,
    HailoRTNetworkGroupNotActivatedException,
    HailoRTNotFoundException,
    HailoRTPCIeDriverException,
    HailoRTStreamAborted,
    HailoRTStreamAbortedByUser,
    HailoRTTimeout,
    HailoRTUnsupportedOpcodeException,
    HailoStatusInvalidValueException,
    InvalidProtocolVersionException,
    get_status_message,
)
from hailo_platform.pyhailort._genai import LLMGeneratorCompletion
from hailo_platform.pyhailort._genai_versions import GENAI_EXPORTS, PYHAILORT_EXPORTS
from hailo_platform.pyhailort._infer_model import (
    HEF,
    AsyncInferCompletionInfo,
    AsyncInferJob,
    ConfiguredInferModel,
    InferModel,
)

globals().update(GENAI_EXPORTS)
globals().update(PYHAILORT_EXPORTS)

__all__ = [
    "HAILO_UNIQUE_VDEVICE_GROUP_ID",
    "HEF",
    "AsyncInferCompletionInfo",
    "AsyncInferJob",
    "BoardInformation",
    "ConfiguredInferModel",
    "Control",
    "Device",
    "DeviceArchitectureTypes",
    "ExceptionWrapper",
    "FormatOrder",
    "FormatType",
    "HailoCommunicationClosedException",
    "HailoFirmwareMode",
    "HailoFirmwareType",
    "HailoFirmwareVersion",
    "HailoRTDriverOperationFailedException",
    "HailoRTEthException",
    "HailoRTException",
    "HailoRTFirmwareControlFailedException",
    "HailoRTHEFNotCompatibleWithDevice",
    "HailoRTInvalidArgumentException",
    "HailoRTInvalidFrameException",
    "HailoRTInvalidHEFException",
    "HailoRTInvalidOperationException",
    "HailoRTNetworkGroupNotActivatedException",
    "HailoRTNotFoundException",
    "HailoRTPCIeDriverException",
    "HailoRTStreamAborted",
    "HailoRTStreamAbortedByUser",
    "HailoRTTimeout",
    "HailoRTUnsupportedOpcodeException",
    "HailoSchedulingAlgorithm",
    "HailoStatusInvalidValueException",
    "InferModel",
    "InvalidProtocolVersionException",
    "LLMGeneratorCompletion",
    "TemperatureInfo",
    "VDevice",
    "get_status_message",
    *GENAI_EXPORTS,
    *PYHAILORT_EXPORTS,
]
