"""Native VDevice and Device objects of the simulated Hailo-10H (one PCIe device, no /dev/hailo0).

Device(id).control gives the chip temperature (HAILO_DOUBLE_CHIP_TEMP_C, ts1 half a degree above
ts0, a running sample count) and identify() board information. The board fields are invented but
shaped like the real BoardInformation; the firmware version follows the mimicked HailoRT version.
The string fields come whole, NUL-padded to their C array sizes (hailort.h hailo_device_identity_t,
v5.1.1:456-472): the bindings return `board_name_length` characters of the array
(pyhailort.cpp v5.1.1:376-377) and pyhailort.py strips the NULs only when printing
(BoardInformation.__str__, v5.1.1:1435-1458), so a caller that shows `board_name` must strip them.
Opening a Device does not take the device: telemetry works beside a VDevice, which the double assumes
(unverified on hardware).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hailo_double_tools import journal
from hailo_double_tools.locks import DeviceLease
from hailo_double_tools.native import (
    HAILO_INVALID_ARGUMENT,
    HAILO_OUT_OF_PHYSICAL_DEVICES,
    TemperatureInfo,
    VDeviceParams,
    fail,
)
from hailo_double_tools.settings import active_profile, chip_temperature_c

DEVICE_ID = "0001:01:00.0"
HAILO10H_ARCHITECTURE = 6  # DeviceArchitectureTypes.HAILO10H
_samples = itertools.count(1)


class NativeVDevice:
    def __init__(self, params: VDeviceParams, device_ids: list[str]) -> None:
        unknown = [d for d in device_ids if d != DEVICE_ID]
        if unknown:
            fail(HAILO_INVALID_ARGUMENT, f"Device ids {unknown} not found (the system has {DEVICE_ID})")
        if params.device_count != 1:
            fail(HAILO_OUT_OF_PHYSICAL_DEVICES, f"requested {params.device_count} devices, found 1")
        self.params = copy.copy(params)
        self.lease = DeviceLease(params.group_id)
        journal.log("vdevice_created", group_id=params.group_id)

    def release(self) -> None:
        if self.lease.active:
            self.lease.release()
            journal.log("vdevice_released", group_id=self.params.group_id)

    def get_physical_devices_ids(self) -> list[str]:
        return [DEVICE_ID]


def _field(text: str, size: int) -> str:
    """A C char array of `size` read whole: the text, then NULs."""
    return text.ljust(size, "\0")


class BoardIdentity:
    """The fields of the identify control's response."""

    def __init__(self) -> None:
        major, minor, revision = (int(p) for p in active_profile().version.split("."))
        self.protocol_version = 2
        self.fw_version = _FirmwareVersion(major, minor, revision)
        self.logger_version = 0
        self.board_name = _field("Hailo-10H", 32)  # HAILO_MAX_BOARD_NAME_LENGTH
        self.is_release = True
        self.extended_context_switch_buffer = False
        self.device_architecture = HAILO10H_ARCHITECTURE
        self.serial_number = _field("HAILO-DBL-0001", 16)  # HAILO_MAX_SERIAL_NUMBER_LENGTH
        self.part_number = _field("HM21LB1C2LAE", 16)  # HAILO_MAX_PART_NUMBER_LENGTH
        self.product_name = _field("HAILO-10H AI HAT+ 2 (double)", 42)  # HAILO_MAX_PRODUCT_NAME_LENGTH


class _FirmwareVersion:
    def __init__(self, major: int, minor: int, revision: int) -> None:
        self.major, self.minor, self.revision = major, minor, revision


class NativeDevice:
    @staticmethod
    def scan() -> list[str]:
        return [DEVICE_ID]

    def __init__(self, device_id: str) -> None:
        if device_id != DEVICE_ID:
            fail(HAILO_INVALID_ARGUMENT, f"Device {device_id!r} not found (the system has {DEVICE_ID})")
        self.device_id = device_id

    def get_chip_temperature(self) -> TemperatureInfo:
        ts0 = chip_temperature_c()
        return TemperatureInfo(ts0, ts0 + 0.5, next(_samples) % 65536)

    def identify(self) -> Any:
        return BoardIdentity()

    def release(self) -> None:
        return None
