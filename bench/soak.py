"""A bounded soak: the service driven open-loop at four times its measured capacity, then checked for leaks.

Starts the service on the demo models, measures its capacity with two closed-loop clients on the mix
below, then sends requests at 4x that rate (Poisson arrivals, each its own task, never waiting for
earlier answers) for `--minutes`: chat whole and streamed (a third of the streams dropped after their
first chunk), classify, embeddings, and bad requests (invalid JSON, a bad field, an unknown route).
Every request must end with an answer (any status) or, for the dropped streams, the drop: "lost" is
a connection error, or no answer within 180 s (a hang). Prints requests sent, answers by status,
p99 time to a 503, and each process's resident memory, open files and threads after warm-up and at
the end (after the load, once idle). Last line `soak_lost=<n> rss_growth_pct=<max over processes>`
(targets: 0 lost; growth within 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "models"))

from service import Service  # noqa: E402

ANSWER_WITHIN_S = 180.0  # past inference.timeout_s + its margin: no answer by then is a hang
LOAD_FACTOR = 4.0
CAPACITY_S = 20.0


def _image() -> str:
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[16:48, 16:48] = (220, 30, 30)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


IMAGE = _image()
QUESTION = [{"type": "image_url", "image_url": {"url": IMAGE}}, {"type": "text", "text": "What color is it?"}]
CHAT = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 8, "temperature": 0}
# (weight, kind)
MIX = [(30, "chat"), (20, "stream"), (25, "classify"), (15, "embeddings"), (10, "bad")]
BAD = [
    ("/v1/chat/completions", b"{not json", {"Content-Type": "application/json"}),
    ("/v1/chat/completions", b'{"messages": [], "temperature": 9}', {"Content-Type": "application/json"}),
    ("/v1/no/such/route", b"{}", {"Content-Type": "application/json"}),
]


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.statuses: Counter[str] = Counter()
        self.lost: list[str] = []
        self.to_503: list[float] = []

    def answered(self, status: int, seconds: float) -> None:
        self.statuses[str(status)] += 1
        if status == 503:
            self.to_503.append(seconds)


async def one(http: httpx.AsyncClient, kind: str, tally: Tally, rng: random.Random) -> None:
    started = time.monotonic()
    tally.sent += 1
    try:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            status = await _send(http, kind, rng)
    except TimeoutError:
        tally.lost.append(f"{kind}: no answer within {ANSWER_WITHIN_S:g} s")
        return
    except httpx.HTTPError as error:
        tally.lost.append(f"{kind}: {error!r:.200}")
        return
    if status is None:
        tally.statuses["dropped_by_client"] += 1
    else:
        tally.answered(status, time.monotonic() - started)


async def _send(http: httpx.AsyncClient, kind: str, rng: random.Random) -> int | None:
    if kind == "chat":
        return (await http.post("/v1/chat/completions", json=CHAT)).status_code
    if kind == "stream":
        async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            drop = rng.random() < 1 / 3
            async for _ in response.aiter_lines():
                if drop and response.status_code == 200:
                    return None  # the client goes away mid-stream
            return response.status_code
    if kind == "classify":
        body = {"image": IMAGE, "prompts": ["a red square", "a blue circle", "a green triangle"]}
        return (await http.post("/v1/classify", json=body)).status_code
    if kind == "embeddings":
        body = {"input": ["a red square", IMAGE], "model": "clip-demo"}
        return (await http.post("/v1/embeddings", json=body)).status_code
    path, content, headers = rng.choice(BAD)
    return (await http.post(path, content=content, headers=headers)).status_code


def _kind(rng: random.Random) -> str:
    return rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]


async def capacity(base_url: str) -> float:
    """Answers per second of two closed-loop clients on the mix."""
    rng, tally = random.Random(1), Tally()
    deadline = time.monotonic() + CAPACITY_S
    async with httpx.AsyncClient(base_url=base_url, timeout=ANSWER_WITHIN_S) as http:

        async def client() -> None:
            while time.monotonic() < deadline:
                await one(http, _kind(rng), tally, rng)

        await asyncio.gather(client(), client())
    return tally.sent / CAPACITY_S


async def soak(base_url: str, rate: float, seconds: float) -> Tally:
    rng, tally = random.Random(2), Tally()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, timeout=ANSWER_WITHIN_S, limits=limits) as http:
        tasks: set[asyncio.Task[None]] = set()
        deadline = time.monotonic() + seconds
        next_at = time.monotonic()
        while next_at < deadline and time.monotonic() < deadline:  # arrivals the client missed are lost
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            task = asyncio.create_task(one(http, _kind(rng), tally, rng))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += rng.expovariate(rate)
        if tasks:
            await asyncio.wait(tasks)
    return tally


def resources(service: Service) -> dict[str, tuple[int, int, int]]:
    """Per process: resident bytes, open files (fds), threads."""
    found = {}
    for name, pid in (
        ("supervisor", service.process.pid),
        ("api", service.child_pid("api.main")),
        ("worker", service.child_pid("npu_worker.main")),
    ):
        process = psutil.Process(pid)
        found[name] = (process.memory_info().rss, process.num_fds(), process.num_threads())
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Path(tmp), {"logging": {"level": "warning"}}).wait_ready()
        try:
            measured = asyncio.run(capacity(service.base_url))
            start = resources(service)
            rate = LOAD_FACTOR * measured
            started = time.monotonic()
            tally = asyncio.run(soak(service.base_url, rate, args.minutes * 60))
            took = time.monotonic() - started
            end = resources(service)
            restarts = service.http.get("/health").json()["worker_restarts"]
        finally:
            service.stop()
    print(f"capacity={measured:.1f}/s offered={rate:.1f}/s for {args.minutes:g} min ({took:.0f} s)")
    print(f"sent={tally.sent} achieved={tally.sent / (args.minutes * 60):.1f}/s worker_restarts={restarts}")
    print("answers " + " ".join(f"{k}={v}" for k, v in sorted(tally.statuses.items())))
    print(f"lost={len(tally.lost)} " + "; ".join(tally.lost[:5]))
    print(f"p99_to_503_ms={percentile(tally.to_503, 0.99) * 1000:.1f} (503s: {len(tally.to_503)})")
    growth = []
    for name in start:
        (rss0, fds0, threads0), (rss1, fds1, threads1) = start[name], end[name]
        growth.append((rss1 - rss0) / rss0 * 100)
        print(
            f"{name:10s} rss_mb {rss0 / 2**20:7.1f} -> {rss1 / 2**20:7.1f}  "
            f"open_files {fds0} -> {fds1}  threads {threads0} -> {threads1}"
        )
    print(f"soak_lost={len(tally.lost)} rss_growth_pct={max(growth):.1f}")
    return 0 if not tally.lost and max(growth) <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
