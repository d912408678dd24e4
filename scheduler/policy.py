"""Turns on the Hailo-10H with hailo-ollama: a pure state machine, with the clock and the world injected.

A Hailo-10H holds one LLM/VLM at a time, hailo-ollama keeps the whole device while its model is
loaded, and a switch costs a model load (10-40 s). So the device is taken in turns:

- **Taking** it for vision work while hailo-ollama holds it: ask hailo-ollama to unload (its unload
  queues behind a running answer, so nothing is cut off), then tell the worker to load (the worker
  retries while the device is still held).
- **Giving it back**: tell the worker to release once no vision work is waiting or running and the
  policy says so (idle for `vlm_idle_release_s`, counted from the last use).
- **No thrashing**: whoever gets the device keeps it at least `min_residency_s`; queued vision work
  is served before the device is handed back; once a side's oldest request has waited `max_wait_s`,
  that side gets the next turn whatever the policy prefers.

`TurnPolicy.decide(observation)` returns what to do now; `next_due` says when time alone could
change that. The driver (`scheduler/driver.py`) feeds it observations and carries out its actions;
the simulation benchmark (`bench/npu_sharing.py`) drives the same class with simulated time.
"""

from __future__ import annotations

import math

from npu_worker.backend import ReleaseScope
from npu_worker.states import NpuOwner, WorkerState
from scheduler.turn_types import (
    Action,
    ActionKind,
    Demand,
    Figures,
    Observation,
    OllamaView,
    Phase,
    Policy,
    Settings,
)

# A command the worker shows no sign of after this long is sent again (the worker does what it was
# told last, so a repeat is harmless; a lost message must not leave the turn stuck).
RESEND_S = 10.0
# Worker states in which there is nothing to take turns with: no process, or one that cannot load.
_GONE = (None, WorkerState.STARTING, WorkerState.FAILED)


class TurnPolicy:
    def __init__(self, settings: Settings, now: float) -> None:
        self.settings = settings
        self.phase = Phase.RELEASED
        self.phase_since = now
        self.reason = "starting"
        self.figures = Figures()
        self.owner = NpuOwner.NOBODY
        self.owner_since = now
        self.owner_reason = "starting"
        self._switch_started: float | None = None
        self.loaded_once = False  # the models have been on the device since this worker started
        self.holding_off = False  # the last decision left the device to others on purpose
        self._ollama_since = now  # when hailo-ollama's current turn began (as seen)
        self._ollama_held = False
        self._last_ollama_model = ""
        self._hold_off_until = -math.inf  # an admin release: vision keeps off until then
        self._admin_load = False
        self._keep_until = -math.inf  # a client's keep_alive: no idle release before then
        self._unload_asked = False  # a client's keep_alive 0: give the VLM back after running work
        self._dormant = False  # unloaded on a client's request: not kept warm until new vision work
        self._unload_failed = False

    # --- inputs besides observations --------------------------------------------------------------

    def unload_finished(self, now: float, ok: bool, detail: str) -> None:
        """The driver's hailo-ollama unload returned (ok) or failed (the load is tried anyway)."""
        if self.phase == Phase.UNLOADING_OLLAMA:
            self._unload_failed = not ok
            self._enter(Phase.RELEASED, now, f"hailo-ollama unloaded: {detail}" if ok else detail)

    def admin_load(self) -> None:
        self._admin_load = True
        self._hold_off_until = -math.inf

    def keep_alive(self, now: float, seconds: float) -> None:
        """A client's keep_alive for the VLM (Ollama's API): 0 = give it back after running work; N s
        = no idle release for N s; < 0 = for as long as the policy lets (vision-first and exclusive:
        until something else needs the device; share and ollama-first keep their own idle release,
        since a client pinning the NPU would defeat sharing - Home Assistant sends -1 every time)."""
        if seconds == 0:
            self._unload_asked = True
        elif seconds > 0:
            self._unload_asked = False
            self._keep_until = max(self._keep_until, now + seconds)
        elif self.settings.policy == Policy.VISION_FIRST:
            self._unload_asked = False
            self._keep_until = math.inf

    def admin_release(self, now: float) -> None:
        """Give the device back now (after running work) and keep off it for min_residency_s."""
        self._admin_load = False
        self._hold_off_until = now + self.settings.min_residency_s

    # --- the decision -----------------------------------------------------------------------------

    def decide(self, seen: Observation) -> list[Action]:
        self._follow(seen)
        if seen.worker in _GONE:
            self.loaded_once = self.holding_off = False
            return []
        want, why = self._want_device(seen)
        now = seen.now
        self.holding_off = self.phase == Phase.RELEASED and not want
        if self.phase == Phase.RELEASED and want:
            return [self._take(seen, why)]
        if self.phase == Phase.RELEASING and want:  # work came back before the release happened
            self._enter(Phase.LOADING, now, why)
            return [Action(ActionKind.LOAD, why)]
        if self.phase == Phase.LOADING and not want:  # nobody needs it any more: stop trying
            self._switch_started = None  # no switch happened
            self._enter(Phase.RELEASING, now, why)
            return [Action(ActionKind.RELEASE, why, scope=self._scope(seen))]
        if self.phase == Phase.LOADING and seen.worker == WorkerState.NPU_BUSY and want:
            model = self._ollama_model(seen.ollama)
            retry_unload = seen.ollama.holds_device and model and not self._unload_failed
            if retry_unload and self.settings.uses_device:
                self._enter(Phase.UNLOADING_OLLAMA, now, f"hailo-ollama holds the NPU ({model})")
                return [Action(ActionKind.UNLOAD_OLLAMA, self.reason, model=model)]
        stale = now - self.phase_since >= RESEND_S
        if self.phase == Phase.LOADING and seen.worker == WorkerState.RELEASED and stale:
            self.phase_since = now
            return [Action(ActionKind.LOAD, self.reason)]
        if (
            self.phase == Phase.RELEASING
            and seen.worker == WorkerState.READY
            and stale
            and not seen.vision.in_flight
        ):
            self.phase_since = now
            return [Action(ActionKind.RELEASE, self.reason, scope=self._scope(seen))]
        if self.phase == Phase.HOLDING:
            release, why = self._should_release(seen)
            if release:
                self._switch_started = now
                self._enter(Phase.RELEASING, now, why)
                return [Action(ActionKind.RELEASE, why, scope=self._scope(seen))]
        return []

    def may_dispatch(self, worker: WorkerState | None) -> bool:
        """Vision work may go to the worker now."""
        return self.phase == Phase.HOLDING and worker == WorkerState.READY

    def may_forward(self) -> bool:
        """hailo-ollama work waiting at the door may go to hailo-ollama now: hailo-vision neither holds
        the device nor is taking it (the last decision left it alone), or never uses it (CPU)."""
        return self.phase == Phase.RELEASED or not self.settings.uses_device

    def release_at(self, seen: Observation) -> float | None:
        """When the device will be given back if no vision work comes (None: not while holding, or
        never)."""
        s = self.settings
        if self.phase != Phase.HOLDING or s.policy == Policy.EXCLUSIVE or seen.vision.active:
            return None
        if s.persistent and (not self._shares(seen) or s.ollama_demand_visible):
            return None
        return self._idle_release_at(seen)

    def next_due(self, seen: Observation) -> float | None:
        """The earliest time at which the decision could change with nothing else happening."""
        s = self.settings
        times = []
        if self.phase in (Phase.LOADING, Phase.RELEASING):
            times.append(self.phase_since + RESEND_S)
        if self.phase == Phase.HOLDING:
            times += [self.phase_since + s.min_residency_s, self._idle_release_at(seen)]
        for work in (seen.vision, seen.ollama_work):
            if work.waiting:
                times.append(seen.now + s.max_wait_s - work.oldest_wait_s)
        if seen.vision.waiting:
            times += [self._ollama_since + s.min_residency_s, self._hold_off_until]
        if self.phase == Phase.RELEASED and s.persistent and s.ollama_demand_visible:
            times.append(max(seen.ollama_work.last_use, self._ollama_since) + s.idle_release_s)
        future = [t for t in times if t > seen.now and math.isfinite(t)]
        return min(future, default=None)

    # --- rules ------------------------------------------------------------------------------------

    def _want_device(self, seen: Observation) -> tuple[bool, str]:
        s, vision, now = self.settings, seen.vision, seen.now
        if self.phase != Phase.HOLDING and not (seen.may_load and seen.may_hold):
            return False, seen.refusal
        if s.policy == Policy.EXCLUSIVE:
            return True, "policy exclusive keeps the NPU"
        if self._admin_load:
            return True, "asked to load (admin)"
        starving = vision.waiting > 0 and vision.oldest_wait_s >= s.max_wait_s
        if now < self._hold_off_until and not starving:
            return False, "released on request (admin)"
        if not vision.active:
            if self.phase == Phase.HOLDING:
                return True, self.reason
            if self._unload_asked or self._dormant:
                return False, "a client asked to unload it (keep_alive 0)"
            first_load = not self.loaded_once and not seen.ollama.holds_device
            warm = s.persistent and (first_load or not self._shares(seen) or self._ollama_done(seen))
            return warm, "model.persistent: kept warm" if warm else "no vision work any more"
        if self.phase != Phase.RELEASED or not s.uses_device:
            return True, "vision work waiting"
        door = seen.ollama_work
        if door.in_flight:  # taking the device now would race its request to hailo-ollama's model
            return False, "hailo-ollama is answering a request from the door"
        if starving:
            return True, f"vision work waited {vision.oldest_wait_s:.0f} s (max_wait_s)"
        if self._starving(door):
            return False, "hailo-ollama work waited max_wait_s: its turn first"
        if not seen.ollama.holds_device and not door.waiting:
            return True, "vision work waiting"
        if s.policy == Policy.VISION_FIRST:
            return True, "vision work waiting (policy vision-first)"
        if door.waiting and (s.policy == Policy.OLLAMA_FIRST or door.oldest_wait_s > vision.oldest_wait_s):
            return False, "hailo-ollama work waited longer: its turn first"
        if not seen.ollama.holds_device:
            return True, "vision work waited longer"
        if s.policy == Policy.SHARE and now - self._ollama_since >= s.min_residency_s:
            return True, "vision work waiting; hailo-ollama has had its turn"
        return False, "vision work waits for hailo-ollama's turn"

    def _ollama_done(self, seen: Observation) -> bool:
        """hailo-ollama has had no work for idle_release_s (only known when its demand is visible)."""
        s, door = self.settings, seen.ollama_work
        if not s.ollama_demand_visible or door.active or seen.ollama.busy or s.policy == Policy.OLLAMA_FIRST:
            return False
        return seen.now - max(door.last_use, self._ollama_since) >= s.idle_release_s

    def _starving(self, work: Demand) -> bool:
        return work.waiting > 0 and work.oldest_wait_s >= self.settings.max_wait_s

    def _should_release(self, seen: Observation) -> tuple[bool, str]:
        s, vision, now = self.settings, seen.vision, seen.now
        if vision.in_flight:
            return False, ""
        if not seen.may_hold:
            return True, seen.refusal
        if s.policy == Policy.EXCLUSIVE or self._admin_load:
            return False, ""
        if self._starving(seen.ollama_work) and not self._starving(vision):
            return True, "hailo-ollama work waited max_wait_s"
        if vision.waiting:
            return False, ""
        if now < self._hold_off_until:
            return True, "asked to release (admin)"
        if self._unload_asked:
            return True, "a client asked to unload it (keep_alive 0)"
        if now - self.phase_since < s.min_residency_s:
            return False, ""
        if seen.ollama_work.waiting:
            return True, "hailo-ollama work waiting, vision work done"
        idle = now - max(vision.last_use, self.phase_since)
        if now < self._keep_until or (s.persistent and (not self._shares(seen) or s.ollama_demand_visible)):
            return False, ""
        if idle >= self._idle_release_s():
            return True, f"no vision work for {idle:.0f} s"
        return False, ""

    def _shares(self, seen: Observation) -> bool:
        """Is there a hailo-ollama to give the device to?"""
        s = self.settings
        return s.uses_device and s.ollama_configured and seen.ollama.reachable

    def _idle_release_at(self, seen: Observation) -> float:
        """When idleness alone releases the device: idle counted from the last use (or the load),
        never before the minimum residency nor a client's keep_alive."""
        idle_from = max(seen.vision.last_use, self.phase_since)
        resided = self.phase_since + self.settings.min_residency_s
        return max(resided, idle_from + self._idle_release_s(), self._keep_until)

    def _idle_release_s(self) -> float:
        s = self.settings
        return s.min_residency_s if s.policy == Policy.OLLAMA_FIRST else s.idle_release_s

    def _scope(self, seen: Observation) -> ReleaseScope:
        """The VLM alone when hailo-ollama shares the VDevice group, or when memory is what asks (CLIP,
        small, stays served); else the whole device, so hailo-ollama can open its own."""
        shares_group = self.settings.uses_device and self.settings.ollama_shares_device
        return ReleaseScope.VLM if shares_group or not seen.may_hold else ReleaseScope.DEVICE

    def _take(self, seen: Observation, why: str) -> Action:
        now = seen.now
        if self._switch_started is None:  # (an unload before the load is the same switch)
            self._switch_started = now
        model = self._ollama_model(seen.ollama)
        if self.settings.uses_device and seen.ollama.holds_device and model:
            self._enter(Phase.UNLOADING_OLLAMA, now, why)
            return Action(ActionKind.UNLOAD_OLLAMA, why, model=model)
        self._enter(Phase.LOADING, now, why)
        return Action(ActionKind.LOAD, why)

    def _ollama_model(self, ollama: OllamaView) -> str:
        return ollama.models[0] if ollama.models else self._last_ollama_model

    # --- following the world ----------------------------------------------------------------------

    def _follow(self, seen: Observation) -> None:
        """Bring the phase, hailo-ollama's turn and the owner up to date with what was seen."""
        now, worker = seen.now, seen.worker
        if seen.ollama.models:
            self._last_ollama_model = seen.ollama.models[0]
        if seen.ollama.holds_device != self._ollama_held:
            self._ollama_held = seen.ollama.holds_device
            if self._ollama_held:
                self._ollama_since = now
        if worker == WorkerState.RELEASED and self.phase == Phase.RELEASING and self._unload_asked:
            self._unload_asked, self._dormant = False, True
        if seen.vision.active:
            self._dormant = False
        if worker == WorkerState.READY and self.phase in (Phase.LOADING, Phase.RELEASED):
            self.loaded_once, self._admin_load, self._unload_failed = True, False, False
            self._end_switch(now)
            self._enter(Phase.HOLDING, now, self.reason)
        elif worker in _GONE and self.phase != Phase.RELEASED:
            self._switch_started = None
            self._enter(Phase.RELEASED, now, "worker restarting")
        elif worker == WorkerState.RELEASED and self.phase in (Phase.HOLDING, Phase.RELEASING):
            self._end_switch(now)
            self._enter(Phase.RELEASED, now, self.reason)
        self._follow_owner(seen)

    def _follow_owner(self, seen: Observation) -> None:
        uses_device = self.settings.uses_device
        if uses_device and seen.worker == WorkerState.READY:
            owner, why = NpuOwner.HAILO_VISION, self.reason
        elif seen.ollama.holds_device:
            model = self._ollama_model(seen.ollama)
            owner = NpuOwner.HAILO_OLLAMA
            why = f"{model or 'a model'} {'generating' if seen.ollama.busy else 'loaded'}"
        elif uses_device and seen.worker == WorkerState.NPU_BUSY:
            owner, why = NpuOwner.UNKNOWN, seen.worker_detail or "another process holds the NPU"
        else:
            owner, why = NpuOwner.NOBODY, "no model on the NPU"
        if owner != self.owner:
            self.owner, self.owner_since = owner, seen.now
        self.owner_reason = why

    def _enter(self, phase: Phase, now: float, reason: str) -> None:
        if phase != self.phase:
            self.phase, self.phase_since = phase, now
        self.reason = reason

    def _end_switch(self, now: float) -> None:
        if self._switch_started is None:
            return
        seconds = now - self._switch_started
        self.figures.switches += 1
        self.figures.switch_seconds += seconds
        self.figures.last_switch_s = seconds
        self._switch_started = None
