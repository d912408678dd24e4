"""The supervisor's last line against a leak: a worker that stays past the memory hard limit is restarted.

The API's ladder (scheduler/ladder.py) sheds load before memory gets tight; this catches what it
cannot - a worker whose resident memory keeps growing. Three readings a second apart over the limit
(resources.memory_hard_limit_mb, or 1.25 x memory_limit_mb) are needed, so a load's brief peak is not
punished; the restart is logged with the figures.
"""

from __future__ import annotations

import psutil

from npu_worker.config import ResourcesConfig

CHECK_EVERY_S = 1.0
STRIKES = 3
MB = 1024 * 1024


def hard_limit_mb(resources: ResourcesConfig) -> float:
    return float(resources.memory_hard_limit_mb or resources.memory_limit_mb * 1.25)


class MemoryWatch:
    def __init__(self, limit_mb: float) -> None:
        self.limit_mb = limit_mb
        self.next_check = 0.0
        self.strikes = 0

    def check(self, now: float, pid: int | None) -> float | None:
        """The worker's RSS in MiB when it has now been over the limit STRIKES times in a row."""
        if pid is None or now < self.next_check:
            return None
        self.next_check = now + CHECK_EVERY_S
        try:
            rss_mb = psutil.Process(pid).memory_info().rss / MB
        except psutil.Error:
            return None
        self.strikes = self.strikes + 1 if rss_mb > self.limit_mb else 0
        if self.strikes >= STRIKES:
            self.strikes = 0
            return rss_mb
        return None
