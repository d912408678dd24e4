"""The simulated day behind bench/npu_sharing.py: one Hailo-10H, hailo-vision and hailo-ollama.

The real scheduler policy (scheduler/policy.py) decides; a discrete-event world carries its decisions
out with the published costs: Qwen2-VL-2B load 9.7 s (model zoo) and 35 s (measured on a Pi by
another project), Qwen2.5-1.5B load 8.5 s, time to first token 0.92 s / 0.37 s, 8.4 / 7.0 tokens/s,
hailo-ollama's 2 s pause when it switches, and a retried load while the device is held.

Traffic (seeded): camera questions as a Poisson process (one per 2 min on average, day and night,
10-40 answer tokens), CLIP calls every 5 s (on the NPU while hailo-vision holds it, else on the CPU),
and bursty hailo-ollama chat sessions between 07:00 and 23:00 (one per 90 min on average, 2-6 turns
20-120 s apart, 80-250 tokens each). hailo-ollama's requests come through hailo-vision's door, so
the policy sees them wait; hailo-ollama serves one request at a time and unloads after keep_alive
(300 s from the start of its last request) or when asked to, after its running answer. A second,
busier day (a chat session every 30 min) shows how the figures move when chat takes more of it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npu_worker.states import WorkerState  # noqa: E402
from scheduler.policy import TurnPolicy  # noqa: E402
from scheduler.turn_types import ActionKind, Demand, Observation, OllamaView, Settings  # noqa: E402

DAY_S = 24 * 3600.0
WAKE_S, SLEEP_S = 7 * 3600.0, 23 * 3600.0  # chat sessions happen while people are up
SESSION_EVERY_S = 90 * 60.0
MODEL = "qwen2.5:1.5b"
SEED = 20261130


@dataclass(frozen=True)
class Costs:
    vlm_load_s: float
    llm_load_s: float = 8.5
    vlm_ttft_s: float = 0.92
    vlm_tokens_per_s: float = 8.4
    llm_ttft_s: float = 0.37
    llm_tokens_per_s: float = 7.0
    vlm_release_s: float = 1.0
    ollama_switch_s: float = 2.0  # hailo-ollama 5.1.1 sleeps 2 s when it destroys its VDevice
    keep_alive_s: float = 300.0
    retry_s: tuple[float, ...] = (1, 2, 4, 8, 16, 30)  # the worker's load retries while held
    clip_npu_s: float = 0.016
    clip_cpu_s: float = 0.12


@dataclass(frozen=True)
class Heat:
    """A hot afternoon: the SoC above the warning level from `warm_from` for `warm_s`, and above the
    critical level for `hot_s` in its middle (thermal.warning_* defaults; critical pauses inference)."""

    warm_from: float = 14 * 3600.0
    warm_s: float = 3600.0
    hot_s: float = 600.0
    max_tokens: int = 128
    pause_s: float = 0.5

    def level(self, t: float) -> str:
        hot_from = self.warm_from + (self.warm_s - self.hot_s) / 2
        if hot_from <= t < hot_from + self.hot_s:
            return "critical"
        return "warning" if self.warm_from <= t < self.warm_from + self.warm_s else "normal"


COOL = Heat(warm_s=0.0, hot_s=0.0)


@dataclass(frozen=True)
class Traffic:
    vision: list[tuple[float, int]]  # (arrival, answer tokens)
    ollama: list[tuple[float, int]]
    clip: list[float]

    def summary(self) -> str:
        return (
            f"{len(self.vision)} camera questions, {len(self.ollama)} hailo-ollama chat turns, "
            f"{len(self.clip)} CLIP calls"
        )


def make_traffic(seed: int, session_every_s: float = SESSION_EVERY_S) -> Traffic:
    rng = random.Random(seed)
    vision, t = [], 0.0
    while (t := t + rng.expovariate(1 / 120)) < DAY_S:
        vision.append((t, rng.randint(10, 40)))
    ollama, t = [], WAKE_S
    while (t := t + rng.expovariate(1 / session_every_s)) < SLEEP_S:
        turn = t
        for _ in range(rng.randint(2, 6)):
            ollama.append((turn, rng.randint(80, 250)))
            turn += rng.uniform(20, 120) + 30  # think time after (roughly) the answer
    clip = [i * 5.0 + rng.uniform(0, 1) for i in range(int(DAY_S / 5))]
    return Traffic(vision, sorted(ollama), clip)


@dataclass
class Request:
    arrival: float
    tokens: int
    done: float = math.nan


@dataclass
class Outcome:
    name: str
    vision: list[float]
    ollama: list[float]
    ollama_unserved: int
    clip: list[float]
    switches: int
    cut_off: int
    busy_s: float
    shed: int = 0


class World:
    """The device, the worker, hailo-ollama and the two queues, moved by events in simulated time."""

    def __init__(self, costs: Costs, traffic: Traffic, policy: TurnPolicy, heat: Heat = COOL) -> None:
        self.costs, self.policy, self.heat = costs, policy, heat
        self.shed = 0  # requests answered 503 while the SoC was critical
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.holder: str | None = None  # who has a model on the device: "vision" / "ollama"
        self.worker = WorkerState.RELEASED
        self.worker_busy_until = 0.0  # the worker is loading or releasing until then
        self.load_after_release = False
        self.retries = 0
        self.vision_wait: deque[Request] = deque()
        self.vision_running: Request | None = None
        self.vision_last_use = -math.inf
        self.ollama_last_use = -math.inf
        self.door: deque[Request] = deque()  # hailo-ollama work waiting for its turn
        self.ollama_fifo: deque[Request | str] = deque()  # at hailo-ollama: requests, "unload"
        self.ollama_running: Request | str | None = None
        self.ollama_loaded = False
        self.ollama_expires = math.inf
        self.busy_s = 0.0
        self.cut_off = 0
        self.vision_done: list[Request] = []
        self.ollama_done: list[Request] = []
        self.clip: list[float] = []
        for arrival, tokens in traffic.vision:
            self.at(arrival, self._arrival(self.vision_wait, Request(arrival, tokens)))
        self.vision_ended = -math.inf
        for arrival, tokens in traffic.ollama:
            self.at(arrival, self._arrival(self.door, Request(arrival, tokens)))
        for arrival in traffic.clip:
            self.at(arrival, self._clip_call)
        self._wake_at = math.inf

    def _arrival(self, queue: deque[Request], request: Request) -> Callable[[], None]:
        def arrive() -> None:
            if queue is self.vision_wait and self.heat.level(self.now) == "critical":
                self.shed += 1  # paused: 503 with Retry-After
            else:
                queue.append(request)

        return arrive

    def _clip_call(self) -> None:
        if self.heat.level(self.now) == "critical":
            self.shed += 1
        else:
            self.clip.append(self._clip_s())

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def run(self) -> None:
        while self._events:
            when, _, action = heapq.heappop(self._events)
            self.now = when
            action()
            self._decide()

    # --- the policy -------------------------------------------------------------------------------

    def _observe(self) -> Observation:
        busy = isinstance(self.ollama_running, Request)
        view = OllamaView(
            reachable=True, busy=busy, models=(MODEL,) if self.ollama_loaded and not busy else ()
        )
        vision = self._demand(self.vision_wait, 1 if self.vision_running else 0, self.vision_last_use)
        forwarded = sum(isinstance(item, Request) for item in self.ollama_fifo) + (1 if busy else 0)
        door = self._demand(self.door, forwarded, self.ollama_last_use)
        return Observation(self.now, self.worker, view, vision, door)

    def _demand(self, waiting: deque[Request], in_flight: int, last_use: float) -> Demand:
        oldest = self.now - waiting[0].arrival if waiting else 0.0
        return Demand(len(waiting), oldest, in_flight, last_use)

    def _decide(self) -> None:
        seen = self._observe()
        for action in self.policy.decide(seen):
            if action.kind == ActionKind.UNLOAD_OLLAMA:
                self.ollama_fifo.append("unload")
                self._ollama_next()
            elif action.kind == ActionKind.LOAD:
                self._worker_load()
            else:
                self._worker_release()
        if self.policy.may_dispatch(self.worker) and self.vision_running is None and self.vision_wait:
            pause_left = self.vision_ended + self._pause_s() - self.now
            if pause_left <= 0:
                self._vision_start(self.vision_wait.popleft())
            else:  # the warning level's pause between two generations
                self.at(self.now + pause_left, lambda: None)
        if self.policy.may_forward():
            while self.door:
                self.ollama_fifo.append(self.door.popleft())
            self._ollama_next()
        due = self.policy.next_due(self._observe())
        if due is not None and due < self._wake_at:
            self._wake_at = due
            self.at(due, self._woken)

    def _woken(self) -> None:
        self._wake_at = math.inf

    # --- hailo-vision's worker --------------------------------------------------------------------

    def _worker_load(self) -> None:
        if self.now < self.worker_busy_until and self.worker == WorkerState.READY:
            self.load_after_release = True  # the worker does what it was told last, once it can
            return
        if self.worker in (WorkerState.LOADING, WorkerState.READY):
            return
        if self.holder == "ollama":
            self.worker = WorkerState.NPU_BUSY
            delay = self.costs.retry_s[min(self.retries, len(self.costs.retry_s) - 1)]
            self.retries += 1
            self.at(self.now + delay, self._worker_retry)
            return
        self.worker, self.holder, self.retries = WorkerState.LOADING, "vision", 0
        self.worker_busy_until = self.now + self.costs.vlm_load_s
        self.busy_s += self.costs.vlm_load_s
        self.at(self.worker_busy_until, self._worker_loaded)

    def _worker_retry(self) -> None:
        if self.worker == WorkerState.NPU_BUSY:
            self.worker = WorkerState.RELEASED
            self._worker_load()

    def _worker_loaded(self) -> None:
        if self.worker == WorkerState.LOADING:
            self.worker = WorkerState.READY

    def _worker_release(self) -> None:
        if self.vision_running is not None:
            self.cut_off += 1  # never expected: the policy releases only when nothing runs
        if self.worker == WorkerState.NPU_BUSY:
            self.worker = WorkerState.RELEASED
            return
        self.worker_busy_until = self.now + self.costs.vlm_release_s
        self.at(self.worker_busy_until, self._worker_released)

    def _worker_released(self) -> None:
        self.worker, self.holder = WorkerState.RELEASED, None
        if self.load_after_release:
            self.load_after_release = False
            self._worker_load()
        self._ollama_next()

    def _pause_s(self) -> float:
        return self.heat.pause_s if self.heat.level(self.now) == "warning" else 0.0

    def _vision_start(self, request: Request) -> None:
        self.vision_running = request
        tokens = (
            min(request.tokens, self.heat.max_tokens)
            if self.heat.level(self.now) == "warning"
            else request.tokens
        )
        seconds = self.costs.vlm_ttft_s + tokens / self.costs.vlm_tokens_per_s
        self.busy_s += seconds
        self.at(self.now + seconds, self._vision_end)

    def _vision_end(self) -> None:
        request = self.vision_running
        assert request is not None
        request.done = self.now
        self.vision_done.append(request)
        self.vision_running, self.vision_last_use, self.vision_ended = None, self.now, self.now

    def _clip_s(self) -> float:
        return self.costs.clip_npu_s if self.worker == WorkerState.READY else self.costs.clip_cpu_s

    # --- hailo-ollama -----------------------------------------------------------------------------

    def _ollama_next(self) -> None:
        """hailo-ollama's one-at-a-time loop: the next request or unload, once the last has ended."""
        if self.ollama_running is not None or not self.ollama_fifo:
            return
        item = self.ollama_fifo[0]
        if item == "unload":
            self.ollama_fifo.popleft()
            self.ollama_running = item
            self.at(
                self.now + (self.costs.ollama_switch_s if self.ollama_loaded else 0), self._ollama_unloaded
            )
            return
        assert isinstance(item, Request)
        if not self.ollama_loaded:
            if self.holder is not None:
                return  # the device is hailo-vision's: wait (its door let the request through early)
            self.ollama_loaded, self.holder = True, "ollama"
            self.busy_s += self.costs.llm_load_s
            self.ollama_running = "load"
            self.at(self.now + self.costs.llm_load_s, self._ollama_loaded)
            return
        self.ollama_fifo.popleft()
        self.ollama_running = item
        self.ollama_expires = self.now + self.costs.keep_alive_s
        seconds = self.costs.llm_ttft_s + item.tokens / self.costs.llm_tokens_per_s
        self.busy_s += seconds
        self.at(self.now + seconds, self._ollama_answered)

    def _ollama_loaded(self) -> None:
        self.ollama_running = None
        self._ollama_next()

    def _ollama_answered(self) -> None:
        request = self.ollama_running
        assert isinstance(request, Request)
        request.done = self.now
        self.ollama_done.append(request)
        self.ollama_running, self.ollama_last_use = None, self.now
        self.at(self.ollama_expires, self._ollama_expire)
        self._ollama_next()

    def _ollama_expire(self) -> None:
        if self.ollama_loaded and self.ollama_running is None and self.now >= self.ollama_expires:
            self.ollama_fifo.appendleft("unload")
            self._ollama_next()

    def _ollama_unloaded(self) -> None:
        if self.ollama_loaded:
            self.ollama_loaded, self.holder = False, None
        self.ollama_running = None
        self.policy.unload_finished(self.now, True, "unloaded")
        self._ollama_next()


def simulate(name: str, settings: Settings, costs: Costs, traffic: Traffic, heat: Heat = COOL) -> Outcome:
    world = World(costs, traffic, TurnPolicy(settings, 0.0), heat)
    world.run()
    vision = [r.done - r.arrival for r in world.vision_done]
    ollama = [r.done - r.arrival for r in world.ollama_done]
    unserved = len(traffic.ollama) - len(ollama)
    switches = world.policy.figures.switches
    return Outcome(
        name, vision, ollama, unserved, world.clip, switches, world.cut_off, world.busy_s, world.shed
    )


def dedicated(costs: Costs, traffic: Traffic) -> Outcome:
    """A device per service: each side only queues behind its own work."""

    def fifo(requests: list[tuple[float, int]], ttft: float, rate: float) -> tuple[list[float], float]:
        free, latencies, busy = 0.0, [], 0.0
        for arrival, tokens in requests:
            seconds = ttft + tokens / rate
            free = max(free, arrival) + seconds
            latencies.append(free - arrival)
            busy += seconds
        return latencies, busy

    vision, vision_busy = fifo(traffic.vision, costs.vlm_ttft_s, costs.vlm_tokens_per_s)
    ollama, ollama_busy = fifo(traffic.ollama, costs.llm_ttft_s, costs.llm_tokens_per_s)
    clip = [costs.clip_npu_s] * len(traffic.clip)
    return Outcome("dedicated", vision, ollama, 0, clip, 0, 0, vision_busy + ollama_busy)


if __name__ == "__main__":  # `make bench` runs every file in bench/: show the day it simulates
    print(f"one simulated day: {make_traffic(SEED).summary()}")
