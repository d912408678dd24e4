"""LoadFailures settles an ambiguous HailoRT status; the status is read from any HailoRT exception.

The holder scan is injected here to report what the double cannot make: processes of other users
that cannot be inspected, or a machine where every process can be (root). The exceptions are the
double's, as each release raises them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hailo_double import import_version

from npu_worker.backend import DeviceBusyError, DeviceFailedError, ModelLoadError
from npu_worker.hailo.device import release_quietly
from npu_worker.hailo.failures import Call
from npu_worker.hailo.holders import Holder, HolderScan
from npu_worker.hailo.load_failures import UNCERTAIN_LIMIT_S, LoadFailures, LoadSite
from npu_worker.hailo.runtime import HailoModules, import_hailo
from npu_worker.hailo.status import HailoStatus, status_of

if TYPE_CHECKING:
    from hailo_double.fixtures import HailoEnv

pytest_plugins = ["hailo_double.fixtures"]


@pytest.fixture
def hailo(hailo_env: HailoEnv) -> HailoModules:
    return import_hailo()


def native_status(hailo: HailoModules, code: int) -> BaseException:
    """What a raw native failure looks like (as VLM(...) raises it)."""
    exception: BaseException = hailo.native.HailoRTStatusException(str(code))
    return exception


SITE = LoadSite(Call.GENAI_CREATE, "VLM", Path("/models/qwen2-vl.hef"))
NOBODY_VISIBLE = HolderScan((), unreadable=12)


class Clock:
    """A clock the test moves (LoadFailures times how long a reading stays uncertain)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unseen_holder_is_retried_for_a_bounded_time_then_counts_as_its_other_meaning(
    hailo: HailoModules,
) -> None:
    clock = Clock()
    failures = LoadFailures(scan=lambda: NOBODY_VISIBLE, clock=clock)
    for waited in (0.0, 60.0, UNCERTAIN_LIMIT_S - 1):
        clock.now = 1000.0 + waited
        error = failures.error(hailo, SITE, native_status(hailo, 62), optimize=False)
        assert isinstance(error, DeviceBusyError)
        assert "may be in use" in error.message and "12 processes of other users" in error.message
        assert f"retried for {waited:.0f} s of at most {UNCERTAIN_LIMIT_S:.0f} s" in error.message
    clock.now = 1000.0 + UNCERTAIN_LIMIT_S
    final = failures.error(hailo, SITE, native_status(hailo, 62), optimize=False)
    assert isinstance(final, DeviceFailedError)
    assert f"no holder of the device seen in {UNCERTAIN_LIMIT_S:.0f} s" in final.message
    clock.now += 5.0  # the next uncertain reading starts a fresh wait, as after a successful load
    again = failures.error(hailo, SITE, native_status(hailo, 6), optimize=False)
    assert isinstance(again, DeviceBusyError) and "retried for 0 s" in again.message
    clock.now += 30.0
    failures.loaded()
    assert "retried for 0 s" in failures.error(hailo, SITE, native_status(hailo, 6), optimize=False).message


def test_a_device_nobody_holds_turns_an_ambiguous_status_into_its_other_meaning_at_once(
    hailo: HailoModules,
) -> None:
    failures = LoadFailures(scan=lambda: HolderScan((), unreadable=0))  # e.g. running as root
    refused = failures.error(hailo, SITE, native_status(hailo, 6), optimize=False)
    assert isinstance(refused, ModelLoadError)
    assert "no other process holds the device; see hailort.log" in refused.message
    assert isinstance(
        failures.error(hailo, SITE, native_status(hailo, 62), optimize=False), DeviceFailedError
    )


def test_a_visible_holder_makes_it_busy_and_ends_the_uncertain_wait(hailo: HailoModules) -> None:
    scans = [NOBODY_VISIBLE, HolderScan((Holder(812, "hailo-ollama", "hailo-ollama serve"),), 0)]
    failures = LoadFailures(scan=lambda: scans[0], clock=Clock())
    failures.error(hailo, SITE, native_status(hailo, 6), optimize=False)
    assert failures.uncertain_since is not None
    scans.pop(0)
    busy = failures.error(hailo, SITE, native_status(hailo, 6), optimize=False)
    assert isinstance(busy, DeviceBusyError) and "held by pid 812 (hailo-ollama)" in busy.message
    assert failures.uncertain_since is None


# ----- reading the status out of every kind of HailoRT exception --------------------------------------


@pytest.mark.parametrize("version", ["5.1.1", "5.2.0"])
def test_the_status_is_read_from_native_wrapped_and_plain_exceptions(
    hailo_env: HailoEnv, version: str
) -> None:
    import_version(version)
    try:
        hailo = import_hailo()
        pyhailort = importlib.import_module("hailo_platform.pyhailort.pyhailort")
        wrap = pyhailort.ExceptionWrapper
        name = hailo.status_name
        wrapped = None
        try:
            with wrap():
                raise native_status(hailo, 74)
        except hailo.errors as exc:
            wrapped = exc
        assert wrapped is not None and status_of(wrapped, name) == HailoStatus(
            "HAILO_OUT_OF_PHYSICAL_DEVICES", 74
        )
        assert status_of(native_status(hailo, 26), name) == HailoStatus("HAILO_INVALID_HEF", 26)
        callback = wrap.create_exception_from_status(4)  # an async job's callback: no __cause__
        assert status_of(callback, name) == HailoStatus("HAILO_TIMEOUT", None)
        assert status_of(hailo.platform.HailoRTException("frames must be a list"), name) is None
        assert isinstance(native_status(hailo, 6), hailo.errors)  # caught on every release
    finally:
        import_version("5.2.0")


def test_a_failing_release_is_logged_with_its_meaning_not_raised(
    hailo: HailoModules, caplog: pytest.LogCaptureFixture
) -> None:
    def release() -> None:
        raise native_status(hailo, 62)  # raw: pyhailort.py wraps no release

    release_quietly(hailo, "VDevice", release)
    (record,) = [r for r in caplog.records if r.getMessage() == "hailo_release_failed"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["what"] == "VDevice" and fields["meaning"] == "device failure"
    assert fields["error"] == "HailoRTStatusException: status 62 HAILO_COMMUNICATION_CLOSED"
