"""Is the compute thread stuck? It answers for itself through the age of the step it is in.

Heartbeats come from the worker's socket thread, which keeps running while the compute thread sits
in a device call that never returns; so the socket thread asks this watch before each heartbeat. A
step older than its bound (a load: worker.start_timeout_s; any other step: inference.timeout_s, a
whole request's time) means stuck: the worker exits and is restarted.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator, Mapping


class Step(enum.Enum):
    """What the compute thread does next."""

    STOP = "stop"
    RELEASE = "release"
    LOAD = "load"
    CLIP = "clip"
    START = "start"
    TOKEN = "token"  # noqa: S105 - a generated token, not a secret
    PREPARE_PROMPTS = "prepare_prompts"
    SAVE_CACHE = "save_cache"
    SHRINK_CACHES = "shrink_caches"
    WAIT = "wait"


class StepWatch:
    def __init__(self, clock: Callable[[], float], bound_s: float, bounds: Mapping[Step, float]) -> None:
        self.clock = clock
        self.bound_s = bound_s
        self.bounds = bounds
        self._started: float | None = None
        self._step: Step | None = None

    @contextlib.contextmanager
    def running(self, step: Step) -> Iterator[None]:
        self._started, self._step = self.clock(), step
        try:
            yield
        finally:
            self._started = None

    def stalled(self) -> str | None:
        """What the compute thread has been stuck in past its bound, or None."""
        started, step = self._started, self._step
        if started is None or step is None:
            return None
        seconds, bound = self.clock() - started, self.bounds.get(step, self.bound_s)
        return f"{step.value} has run for {seconds:.0f} s (bound {bound:g} s)" if seconds > bound else None
