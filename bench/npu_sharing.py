"""A day of one Hailo-10H shared by hailo-vision and hailo-ollama, in simulated time, under each policy.

The day itself (traffic, the published costs, and the discrete-event world that carries out the real
scheduler policy's decisions) is bench/npu_world.py.

Compared: each policy, `naive` (switch on every request: no residency, no idle time, first come
first served), and `dedicated` (a device per service: the lower bound). Per run: switches per hour,
p50/p95 vision latency (arrival to last token), p95 hailo-ollama latency, requests cut off (a running
answer interrupted by a switch; must be 0), share of the day the NPU computes or loads. The last
line is `sharing_p95_vs_naive=<share p95 / naive p95>` (target <= 0.5), the larger of the two load
costs' ratios.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from npu_world import (
    COOL,
    DAY_S,
    SEED,
    Costs,
    Heat,
    Outcome,
    Traffic,
    World,
    dedicated,
    make_traffic,
    simulate,
)

from scheduler.policy import TurnPolicy
from scheduler.turn_types import Policy, Settings


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(outcome: Outcome) -> str:
    hours = DAY_S / 3600
    ollama = f"{percentile(outcome.ollama, 0.95):6.1f} s" if outcome.ollama else "   n/a  "
    unserved = f" ({outcome.ollama_unserved} never served)" if outcome.ollama_unserved else ""
    return (
        f"{outcome.name:13} switches/h {outcome.switches / hours:5.2f}  "
        f"vision p50 {percentile(outcome.vision, 0.5):5.1f} s p95 {percentile(outcome.vision, 0.95):6.1f} s  "
        f"hailo-ollama p95 {ollama}{unserved}  clip p95 {percentile(outcome.clip, 0.95) * 1000:4.0f} ms  "
        f"cut off {outcome.cut_off}  NPU busy {outcome.busy_s / DAY_S * 100:4.1f} %"
    )


BASE = Settings(
    persistent=True, idle_release_s=120, min_residency_s=30, max_wait_s=60, ollama_demand_visible=True
)
POLICIES = {
    "share": BASE,
    "vision-first": dataclasses.replace(BASE, policy=Policy.VISION_FIRST),
    "ollama-first": dataclasses.replace(BASE, policy=Policy.OLLAMA_FIRST),
    "exclusive": dataclasses.replace(BASE, policy=Policy.EXCLUSIVE),
    # switch on every request: no residency, no idle time, no grouping
    "naive": dataclasses.replace(
        BASE, persistent=False, idle_release_s=0, min_residency_s=0, max_wait_s=math.inf
    ),
}


def compare(traffic: Traffic, load_s: float, names: tuple[str, ...]) -> dict[str, Outcome]:
    costs = Costs(vlm_load_s=load_s)
    outcomes = {name: simulate(name, POLICIES[name], costs, traffic) for name in names}
    outcomes["dedicated"] = dedicated(costs, traffic)
    for outcome in outcomes.values():
        print(report(outcome))
    return outcomes


def print_hot_afternoon(traffic: Traffic, heat: Heat, costs: Costs) -> None:
    """What an hour above the warning level (ten minutes of it critical) costs under `share`."""
    outcomes = {}
    for name, weather in (("cool", COOL), ("hot", heat)):
        world = World(costs, traffic, TurnPolicy(POLICIES["share"], 0.0), weather)
        world.run()
        afternoon = [
            r.done - r.arrival
            for r in world.vision_done
            if heat.warm_from <= r.arrival < heat.warm_from + heat.warm_s
        ]
        outcomes[name] = (afternoon, world.shed)
    (cool, _), (hot, shed) = outcomes["cool"], outcomes["hot"]
    print(
        f"\na hot afternoon (SoC above the warning level 14:00-15:00, critical 14:25-14:35), share, VLM load "
        f"{costs.vlm_load_s:g} s: vision p95 in that hour {percentile(hot, 0.95):.1f} s (cool day "
        f"{percentile(cool, 0.95):.1f} s), {len(cool) - len(hot)} camera questions and "
        f"{shed - (len(cool) - len(hot))} CLIP calls shed with 503 while critical ({shed} requests in all)"
    )


def main() -> None:
    traffic = make_traffic(SEED)
    print(f"one simulated day: {traffic.summary()}")
    ratios: dict[float, tuple[float, float]] = {}
    for load_s in (9.7, 35.0):
        print(f"\nVLM load {load_s:g} s:")
        outcomes = compare(traffic, load_s, tuple(POLICIES))
        share_p95 = percentile(outcomes["share"].vision, 0.95)
        ratios[load_s] = (
            share_p95 / percentile(outcomes["naive"].vision, 0.95),
            share_p95 / percentile(outcomes["dedicated"].vision, 0.95),
        )
        cut = sum(o.cut_off for o in outcomes.values())
        print(f"requests cut off under every policy: {cut} (target 0)")
    print_hot_afternoon(traffic, Heat(), Costs(vlm_load_s=9.7))
    busy = make_traffic(SEED, session_every_s=30 * 60.0)
    print(f"\na busier day ({len(busy.ollama)} chat turns), VLM load 35 s:")
    compare(busy, 35.0, ("share", "naive"))
    for load_s, (vs_naive, vs_dedicated) in ratios.items():
        print(
            f"VLM load {load_s:g} s: share p95 / naive p95 {vs_naive:.3f}, / dedicated p95 {vs_dedicated:.2f}"
        )
    worst = max(ratios, key=lambda load_s: ratios[load_s][0])
    print(f"sharing_p95_vs_dedicated={ratios[worst][1]:.2f}")
    print(f"sharing_p95_vs_naive={ratios[worst][0]:.3f}  (target <= 0.5; VLM load {worst:g} s)")


if __name__ == "__main__":
    main()
