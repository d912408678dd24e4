"""What the service adds to a completion: HTTP -> API -> ZeroMQ -> worker, against the runner in-process.

Same prompt, same token count (min_tokens = max_tokens), same run, alternating the paths so that
machine noise hits all alike. Prints p50/p99 of each path; the per-token relay cost of streaming is
the slope between a short and a long streamed completion, beyond what the same tokens cost
in-process. Last line `overhead_p50_ms=<service p50 - in-process p50>` (target <= 1 ms;
<= 0.2 ms per streamed token).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "models"))

from service import Service  # noqa: E402

from npu_worker.backend import Message, SamplingParams  # noqa: E402
from npu_worker.cpu.qwen2vl_runner import Qwen2VLRunner  # noqa: E402

ROUNDS = 60
TOKENS = 8
LONG_TOKENS = 40
QUESTION = "What color is the shape?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(runner: Qwen2VLRunner, tokens: int = TOKENS) -> float:
    params = SamplingParams(max_tokens=tokens, min_tokens=tokens, temperature=0)
    started = time.perf_counter()
    for _ in runner.generate([Message.text("user", QUESTION)], params):
        pass
    return time.perf_counter() - started


def through_service(connection: http.client.HTTPConnection, stream: bool, tokens: int = TOKENS) -> float:
    body = json.dumps(
        {
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": tokens,
            "min_tokens": tokens,
            "temperature": 0,
            "stream": stream,
        }
    )
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"service answered {response.status}: {payload[:200]!r}")
    return elapsed


def main() -> int:
    runner = Qwen2VLRunner(ROOT / "models/demo/qwen2-vl-demo")
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(
            Path(tmp), {"clip": {"enabled": False}, "logging": {"level": "warning"}}
        ).wait_ready()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
            for _ in range(5):  # warm both paths
                in_process(runner)
                through_service(connection, False)
                through_service(connection, True)
            local, whole, streamed, local_long, streamed_long = [], [], [], [], []
            for _ in range(ROUNDS):
                local.append(in_process(runner))
                whole.append(through_service(connection, False))
                streamed.append(through_service(connection, True))
                local_long.append(in_process(runner, LONG_TOKENS))
                streamed_long.append(through_service(connection, True, LONG_TOKENS))
            connection.close()
        finally:
            service.stop()
    ms = 1000.0
    p50 = {
        name: statistics.median(v) * ms
        for name, v in (
            ("local", local),
            ("whole", whole),
            ("sse", streamed),
            ("local_long", local_long),
            ("sse_long", streamed_long),
        )
    }
    print(f"rounds={ROUNDS} tokens_per_completion={TOKENS} (long: {LONG_TOKENS})")
    for label, name, values in (
        ("in_process", "local", local),
        ("service", "whole", whole),
        ("service_sse", "sse", streamed),
        ("in_process_long", "local_long", local_long),
        ("service_sse_long", "sse_long", streamed_long),
    ):
        print(f"{label:17s} p50={p50[name]:8.3f} ms  p99={percentile(values, 0.99) * ms:8.3f} ms")
    per_token = ((p50["sse_long"] - p50["local_long"]) - (p50["sse"] - p50["local"])) / (LONG_TOKENS - TOKENS)
    print(f"relay_per_streamed_token_ms={per_token:.4f}")
    print(f"overhead_p50_ms={p50['whole'] - p50['local']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
