"""pyhailort.py's VDevice, Device, Control and board-information classes, over the double's natives.

Bodies follow HailoRT 5.2.0's pyhailort.py: which calls go through ExceptionWrapper, the gc.collect()
before opening a device, create_params(), create_infer_model() only from the creating process.
The legacy configure()/InferVStreams path is not provided (reported not to work on Hailo-10H).
"""

from __future__ import annotations

import gc
import os
import struct
from enum import Enum, IntEnum
from typing import Any, Literal

from hailo_double_tools.native import TemperatureInfo, VDeviceParams
from hailo_double_tools.native_device import NativeDevice, NativeVDevice
from hailo_double_tools.native_infer import NativeInferModel
from hailo_platform.pyhailort._errors import ExceptionWrapper, HailoRTException
from hailo_platform.pyhailort._infer_model import InferModel

BOARD_INFO_NOT_CONFIGURED_ATTR = "<N/A>"


class DeviceArchitectureTypes(IntEnum):
    HAILO8_A0 = 0
    HAILO8 = 1
    HAILO8L = 2
    HAILO15H = 3
    HAILO15L = 4
    HAILO15M = 5
    HAILO10H = 6

    def __str__(self) -> str:
        return self.name


class HailoFirmwareMode(Enum):
    DEVELOP = "develop"
    RELEASE = "release"


class HailoFirmwareType(Enum):
    CORE = "core"
    APP = "app"


class HailoFirmwareVersion:
    """A Hailo chip firmware version: major, minor, revision, mode, fw_type."""

    FW_VERSION_FORMAT = "<III"

    def __init__(
        self, firmware_version_buffer: bytes, is_release: bool, extended: bool, fw_type: Any
    ) -> None:
        self.major, self.minor, self.revision = struct.unpack(self.FW_VERSION_FORMAT, firmware_version_buffer)
        self.fw_type = fw_type
        self.mode = HailoFirmwareMode.RELEASE if is_release else HailoFirmwareMode.DEVELOP
        self.extended_context_switch_buffer = extended

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision} ({self.mode.value},{self.fw_type.value})"

    @classmethod
    def construct_from_params(
        cls, major: int, minor: int, revision: int, is_release: bool, extended: bool, fw_type: Any
    ) -> HailoFirmwareVersion:
        return cls(struct.pack(cls.FW_VERSION_FORMAT, major, minor, revision), is_release, extended, fw_type)


class BoardInformation:
    """pyhailort.py's BoardInformation (v5.1.1:1420-1463): string fields as the device sent them."""

    def __init__(
        self,
        protocol_version: int,
        fw_version_major: int,
        fw_version_minor: int,
        fw_version_revision: int,
        logger_version: int,
        board_name: str,
        is_release: bool,
        extended_context_switch_buffer: bool,
        device_architecture: int,
        serial_number: str,
        part_number: str,
        product_name: str,
    ) -> None:
        self.protocol_version = protocol_version
        self.firmware_version = HailoFirmwareVersion.construct_from_params(
            fw_version_major,
            fw_version_minor,
            fw_version_revision,
            is_release,
            extended_context_switch_buffer,
            HailoFirmwareType.APP,
        )
        self.logger_version = logger_version
        self.board_name = board_name
        self.is_release = is_release
        self.device_architecture = DeviceArchitectureTypes(device_architecture)
        self.serial_number = serial_number
        self.part_number = part_number
        self.product_name = product_name

    def _string_field_str(self, string_field: str) -> str:
        return string_field.rstrip("\x00") or BOARD_INFO_NOT_CONFIGURED_ATTR

    def __str__(self) -> str:
        return (
            f"Control Protocol Version: {self.protocol_version}\n"
            f"Firmware Version: {self.firmware_version}\n"
            f"Logger Version: {self.logger_version}\n"
            f"Board Name: {self.board_name.rstrip(chr(0))}\n"
            f"Device Architecture: {self.device_architecture}\n"
            f"Serial Number: {self._string_field_str(self.serial_number)}\n"
            f"Part Number: {self._string_field_str(self.part_number)}\n"
            f"Product Name: {self._string_field_str(self.product_name)}\n"
        )


class Control:
    """The control API of one Device (the double has the read-only parts telemetry needs)."""

    def __init__(self, device: NativeDevice) -> None:
        self._device_handle = device

    def identify(self) -> BoardInformation:
        with ExceptionWrapper():
            response = self._device_handle.identify()
        return BoardInformation(
            response.protocol_version,
            response.fw_version.major,
            response.fw_version.minor,
            response.fw_version.revision,
            response.logger_version,
            response.board_name,
            response.is_release,
            response.extended_context_switch_buffer,
            int(response.device_architecture),
            response.serial_number,
            response.part_number,
            response.product_name,
        )

    def get_chip_temperature(self) -> TemperatureInfo:
        with ExceptionWrapper():
            return self._device_handle.get_chip_temperature()


class Device:
    """A physical Hailo device (for inference use VDevice)."""

    @classmethod
    def scan(cls) -> list[str]:
        return NativeDevice.scan()

    def __init__(self, device_id: str | None = None) -> None:
        gc.collect()
        self._device: Any = None
        if device_id is None:
            system_device_ids = Device.scan()
            if len(system_device_ids) == 0:
                raise HailoRTException("HailoRT device not found in the system")
            device_id = system_device_ids[0]
        self._device_id = device_id
        self._device = NativeDevice(device_id)
        self._creation_pid = os.getpid()
        self._control_object = Control(self._device)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False

    def __del__(self) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Device({self._device_id!r})"

    def release(self) -> None:
        if getattr(self, "_device", None) is not None:
            with ExceptionWrapper():
                self._device.release()
            self._device = None

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def control(self) -> Control:
        return self._control_object


class VDevice:
    """Hailo virtual device representation."""

    def __init__(self, params: VDeviceParams | None = None, *, device_ids: list[str] | None = None) -> None:
        gc.collect()
        self._vdevice: Any = None
        self._id = "VDevice"
        self._params = params
        self._loaded_network_groups: list[Any] = []
        self._creation_pid = os.getpid()
        self._device_ids = device_ids
        self._open_vdevice()

    def _open_vdevice(self) -> None:
        if self._params is None:
            self._params = VDevice.create_params()
        with ExceptionWrapper():
            device_ids = [] if self._device_ids is None else self._device_ids
            self._vdevice = NativeVDevice(self._params, device_ids)

    def __enter__(self) -> VDevice:
        return self

    def release(self) -> None:
        if getattr(self, "_vdevice", None) is not None:
            self._vdevice.release()
            self._vdevice = None

    def __exit__(self, *args: object) -> Literal[False]:
        self.release()
        return False

    def __del__(self) -> None:
        self.release()

    @staticmethod
    def create_params() -> VDeviceParams:
        with ExceptionWrapper():
            return VDeviceParams.default()

    def get_physical_devices(self) -> list[Device]:
        return [Device(dev_id) for dev_id in self.get_physical_devices_ids()]

    def get_physical_devices_ids(self) -> list[str]:
        with ExceptionWrapper():
            return self._vdevice.get_physical_devices_ids()

    def create_infer_model(self, hef_source: str | bytes, name: str = "") -> InferModel:
        if os.getpid() != self._creation_pid:
            raise HailoRTException("InferModel can be created only from the process VDevice was created in.")
        with ExceptionWrapper():
            infer_model_cpp_obj = NativeInferModel(self._vdevice.lease, hef_source, name)
        return InferModel(infer_model_cpp_obj, hef_source)

    @property
    def loaded_network_groups(self) -> list[Any]:
        return self._loaded_network_groups
