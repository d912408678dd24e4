"""pyhailort.py's exceptions and ExceptionWrapper for the mimicked release (hailo_double_tools.errors)."""

from hailo_double_tools.errors import (
    ExceptionWrapper,
    HailoStatusInvalidValueException,
    get_status_message,
    python_exceptions,
)

_layer = python_exceptions()
HailoRTException = _layer.HailoRTException
InvalidProtocolVersionException = _layer.classes["InvalidProtocolVersionException"]
HailoRTFirmwareControlFailedException = _layer.classes["HailoRTFirmwareControlFailedException"]
HailoRTInvalidFrameException = _layer.classes["HailoRTInvalidFrameException"]
HailoRTUnsupportedOpcodeException = _layer.classes["HailoRTUnsupportedOpcodeException"]
HailoRTTimeout = _layer.classes["HailoRTTimeout"]
HailoRTStreamAborted = _layer.classes["HailoRTStreamAborted"]
HailoRTStreamAbortedByUser = _layer.classes["HailoRTStreamAbortedByUser"]
HailoRTInvalidOperationException = _layer.classes["HailoRTInvalidOperationException"]
HailoRTInvalidArgumentException = _layer.classes["HailoRTInvalidArgumentException"]
HailoRTNotFoundException = _layer.classes["HailoRTNotFoundException"]
HailoRTInvalidHEFException = _layer.classes["HailoRTInvalidHEFException"]
HailoRTHEFNotCompatibleWithDevice = _layer.classes["HailoRTHEFNotCompatibleWithDevice"]
HailoRTEthException = _layer.classes["HailoRTEthException"]
HailoRTDriverOperationFailedException = _layer.classes["HailoRTDriverOperationFailedException"]
HailoRTPCIeDriverException = HailoRTDriverOperationFailedException
HailoRTNetworkGroupNotActivatedException = _layer.classes["HailoRTNetworkGroupNotActivatedException"]
HailoCommunicationClosedException = _layer.classes["HailoCommunicationClosedException"]

__all__ = [
    "ExceptionWrapper",
    "HailoCommunicationClosedException",
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
    "HailoStatusInvalidValueException",
    "InvalidProtocolVersionException",
    "get_status_message",
]
