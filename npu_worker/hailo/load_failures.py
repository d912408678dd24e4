"""Turn a HailoRT failure during a load into the backend's error, settling "busy, or not?" safely.

failures.TABLE says what a status means at the call that raised it. A row that reads "busy, unless
the device is free" is settled with the device-holder scan (holders.py):
- another process has the device open: busy; retried every 5 s, the holder named in the detail;
- no other process has it open and every process could be inspected: the row's other meaning
  (a configuration error or a device failure), at once;
- nobody is seen, but some processes could not be inspected (other users' need root): maybe busy.
  Retried like busy (the worker's load backoff), each time saying why in the worker's detail, for
  at most UNCERTAIN_LIMIT_S (one hailo-ollama keep_alive); then the other meaning, so a
  configuration error is never retried forever.
One LoadFailures lives as long as its backend: the uncertain time spans load attempts, and a
successful load or a settled reading starts it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from npu_worker.backend import BackendError, DeviceBusyError, DeviceFailedError, ModelLoadError
from npu_worker.hailo.failures import BUSY_STATUSES, Call, Meaning, Rule, classify
from npu_worker.hailo.holders import HolderScan, describe_holders, scan_holders
from npu_worker.hailo.runtime import HailoModules
from npu_worker.hailo.status import describe, status_of

UNCERTAIN_LIMIT_S = 300.0  # hailo-ollama's default keep_alive: how long it keeps a model unasked
OLLAMA_UNLOAD = (
    "hailo-ollama frees it after keep_alive, or at once with curl -X POST "
    'localhost:8000/api/generate -d \'{"model": "<model>", "keep_alive": 0}\''
)
KV_CACHE = "its GenAI KV cache is taken by another LLM/VLM"


@dataclass(frozen=True)
class LoadSite:
    """Which call of a load failed, and on what."""

    call: Call
    what: str  # "VLM", "CLIP image encoder", "device"
    path: Path | None = None  # the HEF


class LoadFailures:
    def __init__(
        self, scan: Callable[[], HolderScan] = scan_holders, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.scan = scan
        self.clock = clock
        self.uncertain_since: float | None = None  # when the current run of uncertain readings began

    @contextmanager
    def guard(self, hailo: HailoModules, site: LoadSite, optimize: bool = False) -> Iterator[None]:
        """Raise the backend's error for a HailoRT failure inside (`optimize`: what was passed)."""
        try:
            yield
        except hailo.errors as exc:
            raise self.error(hailo, site, exc, optimize) from exc

    def loaded(self) -> None:
        """The load succeeded: the next uncertain reading starts a fresh wait."""
        self.uncertain_since = None

    def error(self, hailo: HailoModules, site: LoadSite, exc: BaseException, optimize: bool) -> BackendError:
        status = status_of(exc, hailo.status_name)
        rule = classify(site.call, status.name if status else None, optimize, hailo.version)
        text = describe(exc, status)
        if rule.unless_free is None:
            self.uncertain_since = None
            return self._error(rule.meaning, site, rule, text)
        return self._settle(site, rule, rule.unless_free, text)

    def _settle(self, site: LoadSite, rule: Rule, otherwise: Meaning, text: str) -> BackendError:
        scan = self.scan()
        if scan.holders or not scan.unreadable:
            self.uncertain_since = None
            if scan.holders:
                return self._busy(rule, f"{text} at {site.what} creation", describe_holders(scan))
            return self._error(otherwise, site, rule, f"{text}; no other process holds the device")
        now = self.clock()
        since = self.uncertain_since = now if self.uncertain_since is None else self.uncertain_since
        waited = now - since
        if waited >= UNCERTAIN_LIMIT_S:
            self.uncertain_since = None
            return self._error(
                otherwise, site, rule, f"{text}; no holder of the device seen in {waited:.0f} s"
            )
        return DeviceBusyError(
            f"the Hailo device may be in use by another process: {site.what} creation failed with {text}, "
            f"which means another process holds it ({KV_CACHE}), or a {otherwise.value}; no other "
            f"process is seen holding it, but {scan.unreadable} processes of other users could not be "
            f"inspected (`sudo hailo-vision doctor` shows them); retried for {waited:.0f} s of at most "
            f"{UNCERTAIN_LIMIT_S:.0f} s, then it counts as a {otherwise.value}"
        )

    @staticmethod
    def _busy(rule: Rule, text: str, holders: str) -> DeviceBusyError:
        kv_cache = "" if rule.statuses <= BUSY_STATUSES else f"; {KV_CACHE}"
        held = f" (held by {holders})" if holders else ""
        return DeviceBusyError(
            f"the Hailo device is in use by another process{kv_cache}{held}: {text}; hailo-vision "
            f"retries until it is free ({OLLAMA_UNLOAD})"
        )

    def _error(self, meaning: Meaning, site: LoadSite, rule: Rule, text: str) -> BackendError:
        where = f"{site.path}: " if site.path else ""
        if meaning is Meaning.BUSY:
            return self._busy(rule, text, describe_holders(self.scan()))
        if meaning is Meaning.BAD_HEF:
            return ModelLoadError(
                f"{where}HailoRT cannot load this {site.what} HEF (is it a HEF for this HailoRT version "
                f"and for Hailo-10H?): {text}"
            )
        if meaning is Meaning.CONFIGURATION:
            return ModelLoadError(f"{where}HailoRT refused the {site.what}: {text}; {rule.hint}")
        return DeviceFailedError(f"the Hailo device failed while loading the {site.what}: {text}")
