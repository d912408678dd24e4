"""The Hailo chip's temperature, for the degradation ladder, read without taking the VDevice.

`Device(id).control.get_chip_temperature()` goes through HailoRT's server and, by HailoRT's sources,
does not take the VDevice lock, so it reads while hailo-ollama (or hailo-vision's own VLM) holds the
device (unverified on hardware). The Device object is kept open between readings, as Hailo's own
tools do; a failure is said once in the log and reads as unknown.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from npu_worker.logs import log_event

log = logging.getLogger("npu_worker.hailo.chip")


class ChipThermometer:
    def __init__(self, platform: ModuleType) -> None:
        self.platform = platform
        self._device: Any = None
        self._said = False

    def celsius(self) -> float | None:
        """The hotter of the chip's two sensors, or None when it cannot be read."""
        try:
            if self._device is None:
                self._device = self.platform.Device(self.platform.Device.scan()[0])
            info = self._device.control.get_chip_temperature()
            return float(max(info.ts0_temperature, info.ts1_temperature))
        except Exception as exc:  # any failure means "unknown"; the service carries on
            if not self._said:
                self._said = True
                log_event(log, "chip_temperature_unknown", logging.WARNING, error=repr(exc))
            return None
