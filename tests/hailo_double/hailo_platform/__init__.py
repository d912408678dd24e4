"""TEST DOUBLE of HailoRT's `hailo_platform` package: never ship it, tests put it on the path.

Mimics HailoRT 5.0.0 .. 5.2.0 (HAILO_DOUBLE_VERSION, default 5.2.0) on a simulated Hailo-10H backed by
the project's demo ONNX models; see tests/hailo_double/README.md.
"""

from hailo_double_tools.settings import active_profile
from hailo_platform.pyhailort.pyhailort import (
    HEF,
    AsyncInferJob,
    Device,
    FormatOrder,
    FormatType,
    HailoCommunicationClosedException,
    HailoRTException,
    HailoRTStreamAbortedByUser,
    HailoSchedulingAlgorithm,
    VDevice,
)

__version__ = active_profile().version

__all__ = [
    "HEF",
    "AsyncInferJob",
    "Device",
    "FormatOrder",
    "FormatType",
    "HailoCommunicationClosedException",
    "HailoRTException",
    "HailoRTStreamAbortedByUser",
    "HailoSchedulingAlgorithm",
    "VDevice",
]
