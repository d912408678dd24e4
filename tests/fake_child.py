"""A stand-in for the API or the NPU worker in the supervisor tests (test-only).

It takes the real children's arguments (--config-json FILE --runtime-dir DIR), reports STATUS on
the control socket like they do (every worker.heartbeat_interval_s and on every change), and
misbehaves on request: dies, ignores SIGTERM, drains slowly, goes silent. It appends one line per
event ("<role> <event> <pid> <monotonic time>") to the --events file, so tests can check the order
of things across processes. It exits when its parent (the supervisor) is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

DEFAULT_STATES = {"api": "starting:0.2,listening", "worker": "loading:0.3,ready"}
DETAILS = {"npu_busy": "held by another process", "failed": "model file missing"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=("api", "worker"), required=True)
    parser.add_argument("--states", help="state:seconds,...,final_state (default per role)")
    parser.add_argument("--model", default="fake-vlm")
    parser.add_argument("--die-after", type=float, help="exit with --exit-code this long after start")
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--term-delay", type=float, default=0.0, help="seconds from SIGTERM to exit")
    parser.add_argument("--silent-after", type=float, help="stop sending STATUS (staying alive) after this")
    parser.add_argument("--in-flight", type=int, default=0)
    parser.add_argument("--queued", type=int, default=0)
    parser.add_argument("--sees-worker-after", type=float, default=0.0, help="API: worker_ready from then on")
    parser.add_argument("--events", required=True)
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--runtime-dir", required=True)
    return parser.parse_args()


class Recorder:
    def __init__(self, path: str, role: str) -> None:
        self.path, self.role = path, role

    def __call__(self, event: str) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{self.role} {event} {os.getpid()} {time.monotonic():.6f}\n")


def schedule(spec: str) -> list[tuple[str, float]]:
    """'loading:0.3,ready' -> [('loading', 0.3), ('ready', inf)]."""
    steps = []
    for item in spec.split(","):
        name, _, seconds = item.partition(":")
        steps.append((name, float(seconds) if seconds else float("inf")))
    return steps


def state_at(steps: list[tuple[str, float]], elapsed: float) -> str:
    for name, seconds in steps:
        if elapsed < seconds:
            return name
        elapsed -= seconds
    return steps[-1][0]


def main() -> int:
    args = parse_args()
    record = Recorder(args.events, args.role)
    started, parent = time.monotonic(), os.getppid()
    record("start")
    if args.die_after == 0:
        record("exit")
        return args.exit_code

    import zmq

    from npu_worker import codec, protocol, states
    from npu_worker.config_load import config_from_json

    config = config_from_json(Path(args.config_json).read_text(encoding="utf-8"))
    steps = schedule(args.states or DEFAULT_STATES[args.role])
    stop_requested_at: list[float] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        record("term" if signum == signal.SIGTERM else "sigint")
        if signum == signal.SIGINT or not args.ignore_term:
            stop_requested_at.append(time.monotonic())

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    context = zmq.Context()
    control = context.socket(zmq.DEALER)
    control.setsockopt(zmq.LINGER, 0)
    control.connect(protocol.control_endpoint(Path(args.runtime_dir)))
    epoch = protocol.new_epoch()
    started = time.monotonic()  # the state schedule runs from here, after the imports
    sent_state, sent_sees, sent_at, silent = "", False, 0.0, False

    def sees_worker(now: float) -> bool:
        return now - started >= args.sees_worker_after

    while os.getppid() == parent:
        now = time.monotonic()
        if args.die_after is not None and now - started >= args.die_after:
            record("exit")
            return args.exit_code
        if stop_requested_at and now - stop_requested_at[0] >= args.term_delay:
            record("exit")
            return 0
        state = "draining" if stop_requested_at and args.role == "api" else state_at(steps, now - started)
        if args.silent_after is not None and now - started >= args.silent_after:
            if not silent:
                silent = True
                record("silent")
        elif (
            state != sent_state
            or sees_worker(now) != sent_sees
            or now - sent_at >= config.worker.heartbeat_interval_s
        ):
            role = states.Role(args.role)
            status = protocol.Status(
                role=role,
                pid=os.getpid(),
                state=states.ApiState(state) if role == states.Role.API else states.WorkerState(state),
                detail=DETAILS.get(state, f"{state} {args.model}"),
                in_flight=args.in_flight,
                queued=args.queued,
                model=args.model,
                worker_ready=sees_worker(now),
            )
            if state != sent_state:
                record(f"state-{state}")  # before sending: the supervisor may act on it at once
            control.send_multipart(codec.encode(status, epoch))
            sent_state, sent_sees, sent_at = state, sees_worker(now), now
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main())
