"""Open the VDevice, and turn HailoRT's failures during work and release into the backend's errors.

What each status means where is failures.TABLE; loads go through load_failures.LoadFailures. Here:
- a request's parameters refused -> InvalidRequestError (400, the worker carries on);
- anything else while working (device lost, driver failure, timeout) -> DeviceFailedError: the
  worker exits and the supervisor starts a fresh one, which reopens the device;
- a release that fails is logged, never raised: releasing happens on the way out of another error,
  or at unload, and the next load or request finds out what state the device is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from npu_worker.backend import DeviceFailedError, InvalidRequestError
from npu_worker.hailo.failures import Call, Meaning, classify
from npu_worker.hailo.load_failures import LoadFailures, LoadSite
from npu_worker.hailo.runtime import HailoModules
from npu_worker.hailo.status import HailoStatus, describe, status_of
from npu_worker.logs import log_event

log = logging.getLogger("npu_worker.hailo")


def open_vdevice(hailo: HailoModules, group_id: str, failures: LoadFailures) -> Any:
    """A VDevice in `group_id` (SHARED lets the VLM and CLIP HEFs of this process share the chip)."""
    params = hailo.platform.VDevice.create_params()
    params.group_id = group_id
    with failures.guard(hailo, LoadSite(Call.VDEVICE, "device")):
        return hailo.platform.VDevice(params)


def described(hailo: HailoModules, exc: BaseException) -> str:
    """The exception with its HailoRT status named."""
    return describe(exc, status_of(exc, hailo.status_name))


def _meaning(hailo: HailoModules, call: Call, status: HailoStatus | None) -> Meaning:
    return classify(call, status.name if status else None, False, hailo.version).meaning


@contextmanager
def work_errors(hailo: HailoModules, what: str) -> Iterator[None]:
    """Translate HailoRT failures while the device works on a request."""
    try:
        yield
    except hailo.errors as exc:
        status = status_of(exc, hailo.status_name)
        text = describe(exc, status)
        if _meaning(hailo, Call.WORK, status) is Meaning.BAD_REQUEST:
            raise InvalidRequestError(f"the Hailo device refused the {what} request: {text}") from exc
        raise DeviceFailedError(f"the Hailo device failed during {what}: {text}") from exc


def release_quietly(hailo: HailoModules, what: str, release: Callable[[], None]) -> None:
    """Release `what`, logging a failure (pyhailort.py does not wrap releases: raw in every release)."""
    try:
        release()
    except hailo.errors as exc:
        status = status_of(exc, hailo.status_name)
        meaning = _meaning(hailo, Call.RELEASE, status).value
        log_event(
            log,
            "hailo_release_failed",
            logging.WARNING,
            what=what,
            meaning=meaning,
            error=describe(exc, status),
        )
