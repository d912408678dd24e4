"""sd_notify to systemd (Type=notify): READY=1, STATUS=, WATCHDOG=1, EXTEND_TIMEOUT_USEC=, STOPPING=1.

Thin over sdnotify's SystemdNotifier, which sends nothing when $NOTIFY_SOCKET is unset (outside
systemd) and understands abstract sockets ('@...'). This class adds the timing: READY once, STATUS
only when the text changes, WATCHDOG=1 every half of $WATCHDOG_USEC (not at all when $WATCHDOG_PID
names another process), EXTEND_TIMEOUT_USEC every few seconds on request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sdnotify import SystemdNotifier

EXTEND_EVERY_S = 5.0
# Each extension covers three periods, so one late loop iteration does not let the start time out.
EXTEND_BY_S = 3 * EXTEND_EVERY_S


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, or None when systemd's watchdog is not on for this process."""
    usec = environ.get("WATCHDOG_USEC", "")
    watchdog_pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (watchdog_pid and watchdog_pid != str(pid)):
        return None
    return int(usec) / 1e6 / 2


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._notifier = SystemdNotifier()
        self.watchdog_every_s = watchdog_interval_s(env, os.getpid())
        self.ready_sent = False
        self._status = ""
        self._next_watchdog = 0.0
        self._next_extend = 0.0

    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self._send(f"STATUS={text}")

    def ready(self) -> None:
        if not self.ready_sent:
            self.ready_sent = True
            self._send("READY=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self, now: float) -> None:
        """Ping the watchdog if one is due; call only while the service is healthy."""
        if self.watchdog_every_s is not None and now >= self._next_watchdog:
            self._next_watchdog = now + self.watchdog_every_s
            self._send("WATCHDOG=1")

    def extend_start_timeout(self, now: float) -> None:
        """Push systemd's start timeout out by EXTEND_BY_S if due (call while a model loads)."""
        if now >= self._next_extend:
            self._next_extend = now + EXTEND_EVERY_S
            self._send(f"EXTEND_TIMEOUT_USEC={int(EXTEND_BY_S * 1e6)}")

    def next_due(self) -> float | None:
        """When the next watchdog ping is due, for the event loop's poll timeout."""
        return self._next_watchdog if self.watchdog_every_s is not None else None

    def _send(self, message: str) -> None:
        self._notifier.notify(message)
