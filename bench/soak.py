"""A bounded soak: the service driven open-loop at four times its measured capacity, then checked for leaks.

Starts the service on the demo models, measures its capacity with two closed-loop clients on the mix
below, then sends requests at 4x that rate (Poisson arrivals, each its own task, never waiting for
earlier answers) for `--minutes`: chat whole and streamed (a third of the streams dropped after their
first chunk), classify, embeddings, and bad requests (invalid JSON, a bad field, an unknown route).
Every request must end with an answer (any status) or, for the dropped streams, the drop: "lost" is
a connection error, or no answer within 180 s (a hang). Prints requests sent, answers by status,
p99 time to a 503, and each process's resident memory, open files and threads once the load has
warmed up (90 s, or half a shorter run: the API's one-minute windows are full by then) and at the
end. Last line `soak_lost=<n> rss_growth_pct=<max over processes>` (targets: 0 lost; growth within
10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

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
WARM_UP_S = 90.0  # at most (half a shorter soak): past the API's one-minute windows filling up
SAMPLE_S = 15.0


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
    ("/v1/chat/completions", b"{not json"),
    ("/v1/chat/completions", b'{"messages": [], "temperature": 9}'),
    ("/v1/no/such/route", b"{}"),
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


def _requests() -> dict[str, list[tuple[str, bytes]]]:
    """Each kind's requests as (path, body); bodies are built once (the client must stay cheap)."""
    classify = {"image": IMAGE, "prompts": ["a red square", "a blue circle", "a green triangle"]}
    return {
        "chat": [("/v1/chat/completions", json.dumps(CHAT).encode())],
        "stream": [("/v1/chat/completions", json.dumps({**CHAT, "stream": True}).encode())],
        "classify": [("/v1/classify", json.dumps(classify).encode())],
        "embeddings": [("/v1/embeddings", json.dumps({"input": ["a red square", IMAGE]}).encode())],
        "bad": BAD,
    }


REQUESTS = _requests()


async def one(port: int, kind: str, tally: Tally, rng: random.Random) -> None:
    """One request on its own connection (raw HTTP/1.1: a load generator in Python must be cheap to
    offer 4x); the status, or None for a stream the client dropped after its first chunk."""
    path, body = rng.choice(REQUESTS[kind])
    drop = kind == "stream" and rng.random() < 1 / 3
    started = time.monotonic()
    tally.sent += 1
    writer = None
    try:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status = int((await reader.readline()).split()[1])
            headers = {}
            while line := (await reader.readline()).strip():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.lower()] = value.strip()
            if "content-length" in headers:
                await reader.readexactly(int(headers["content-length"]))
            elif drop and status == 200:
                await reader.readline()  # the first chunk's size: the stream runs; leave now
                tally.statuses["dropped_by_client"] += 1
                return
            else:
                while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                    await reader.readexactly(size + 2)
                await reader.readline()
    except TimeoutError:
        tally.lost.append(f"{kind}: no answer within {ANSWER_WITHIN_S:g} s")
        return
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as error:
        tally.lost.append(f"{kind}: {error!r:.200}")
        return
    finally:
        if writer is not None:
            writer.close()
    tally.answered(status, time.monotonic() - started)


def _kind(rng: random.Random) -> str:
    return rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]


async def capacity(port: int) -> float:
    """Answers per second of two closed-loop clients on the mix."""
    rng, tally = random.Random(1), Tally()
    deadline = time.monotonic() + CAPACITY_S

    async def client() -> None:
        while time.monotonic() < deadline:
            await one(port, _kind(rng), tally, rng)

    await asyncio.gather(client(), client())
    return tally.sent / CAPACITY_S


async def soak(port: int, rate: float, seconds: float, sample: Callable[[], None]) -> Tally:
    """Open-loop arrivals at `rate` for `seconds`; `sample()` every SAMPLE_S meanwhile."""
    rng, tally = random.Random(2), Tally()
    tasks: set[asyncio.Task[None]] = set()
    deadline = time.monotonic() + seconds
    sample_at = time.monotonic() + SAMPLE_S
    next_at = time.monotonic()
    while next_at < deadline and time.monotonic() < deadline:  # arrivals the client missed are lost
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        task = asyncio.create_task(one(port, _kind(rng), tally, rng))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += rng.expovariate(rate)
        if time.monotonic() >= sample_at:
            sample()
            sample_at += SAMPLE_S
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
            measured = asyncio.run(capacity(service.port))
            samples: list[tuple[float, dict[str, tuple[int, int, int]]]] = []
            rate = LOAD_FACTOR * measured
            started = time.monotonic()

            def sample() -> None:
                samples.append((time.monotonic() - started, resources(service)))

            tally = asyncio.run(soak(service.port, rate, args.minutes * 60, sample))
            took = time.monotonic() - started
            end = resources(service)
            restarts = service.http.get("/health").json()["worker_restarts"]
        finally:
            service.stop()
    print(f"capacity={measured:.1f}/s offered={rate:.1f}/s for {args.minutes:g} min ({took:.0f} s)")
    print(f"sent={tally.sent} achieved={tally.sent / (args.minutes * 60):.1f}/s worker_restarts={restarts}")
    print("answers " + " ".join(f"{k}={v}" for k, v in sorted(tally.statuses.items())))
    kinds = Counter(lost.split(" ", 1)[1].split("(")[0] for lost in tally.lost)
    print(f"lost={len(tally.lost)} " + " ".join(f"{k}={v}" for k, v in kinds.most_common()))
    print("; ".join(tally.lost[:3]))
    print(f"p99_to_503_ms={percentile(tally.to_503, 0.99) * 1000:.1f} (503s: {len(tally.to_503)})")
    warm_s = min(WARM_UP_S, args.minutes * 30)
    start = next((r for at, r in samples if at >= warm_s), samples[-1][1] if samples else end)
    trend = " ".join(f"{r['api'][0] / 2**20:.0f}" for _, r in samples)
    print(f"api_rss_mb_every_{SAMPLE_S:g}s {trend} (growth counted from {warm_s:g} s)")
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
