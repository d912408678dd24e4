"""/v1/classify throughput through the running service: dynamic batching off and on, 1 and 8 clients.

Two encoders: the demo CLIP on ONNX Runtime (this machine's CPU) and a simulated Hailo-10H encoder
(bench/simulated_clip.py: 16 ms per image at batch 1, 51 ms per batch of 8) whose own ceiling is
8 / 0.051 s = 157 images/s. Each client thread keeps one HTTP connection and sends a 96x96 PNG with
the 18 shapes-world labels in a closed loop. Batching off is resources.max_batch_size 1, on is 8.
Targets: batched 8-client throughput >= 2x unbatched, and >= 90 % of the simulated encoder's ceiling.
With exactly as many clients as a batch holds, a closed loop is bounded by 8 / (51 ms + the round
trip of 8 requests through client, API and worker); 16 clients show the ceiling with work queued.
The last line is `classify_batching_gain=<8 clients batched / 8 clients unbatched images/s>`
(simulated encoder).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "models"), str(BENCH)]

import shapes_world as sw  # noqa: E402
from service import Service  # noqa: E402
from simulated_clip import ENCODER_LIMIT_IMAGES_PER_S, encoder_seconds  # noqa: E402

DURATION_S = 5.0
CLIENTS = (1, 8, 16)  # 16: more requests in flight than one batch holds
BATCH_WAIT_MS = 5.0
LABELS = [f"{colour} {kind}" for colour in sw.COLOUR_NAMES for kind in sw.SHAPES]
SIMULATED = {"HAILO_VISION_BACKEND_FACTORY": "simulated_clip:create_backend", "PYTHONPATH": str(BENCH)}


def request_body(seed: int) -> bytes:
    scene = sw.random_scene(np.random.default_rng(seed), n_shapes=1, size=(96, 96))
    image = base64.b64encode(sw.encode(sw.render(scene), "PNG")).decode()
    return json.dumps({"image": f"data:image/png;base64,{image}", "prompts": LABELS}).encode()


def classify(connection: http.client.HTTPConnection, body: bytes) -> None:
    connection.request("POST", "/v1/classify", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"service answered {response.status}: {payload[:200]!r}")


def closed_loop(port: int, clients: int) -> tuple[int, float]:
    """(requests answered, seconds) of `clients` threads in a closed loop, each on its own connection."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(clients)]
    bodies = [request_body(seed) for seed in range(clients)]
    for connection, body in zip(connections, bodies, strict=True):
        classify(connection, body)  # connect and warm up
    done = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        start.wait()
        while time.perf_counter() < stop_at[0]:
            classify(connections[index], bodies[index])
            done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + DURATION_S
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return sum(done), elapsed


def encoder_figures(service: Service) -> tuple[float, float]:
    """(encoder runs, images encoded) of the worker, from /metrics."""
    text = service.http.get("/metrics").text

    def value(name: str) -> float:
        found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    return value("hailo_vision_clip_encoder_runs"), value("hailo_vision_clip_images_encoded")


def run(label: str, max_batch: int, env: dict[str, str], simulated: bool) -> dict[int, float]:
    config = {
        "model": {"warmup": False},
        "resources": {"max_batch_size": max_batch},
        "clip": {"batch_wait_ms": BATCH_WAIT_MS},
    }
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Path(tmp), config, env).wait_ready()
        try:
            for clients in CLIENTS:
                runs, images = encoder_figures(service)
                answered, elapsed = closed_loop(service.port, clients)
                runs_after, images_after = encoder_figures(service)
                batches, encoded = runs_after - runs, images_after - images
                rates[clients] = answered / elapsed
                line = (
                    f"{label:<10} max_batch_size={max_batch} clients={clients}: "
                    f"{rates[clients]:6.1f} images/s, mean batch {encoded / max(1.0, batches):4.2f}"
                )
                if simulated:  # the simulated time is linear in the batch size: busy = a x runs + b x images
                    per_image = encoder_seconds(2) - encoder_seconds(1)
                    busy = batches * (encoder_seconds(1) - per_image) + encoded * per_image
                    line += f", encoder busy {100 * busy / elapsed:5.1f} % of the time"
                print(line, flush=True)
        finally:
            service.stop()
    return rates


def main() -> int:
    print(f"{DURATION_S:g} s per point, {len(LABELS)} prompts, 96x96 PNG, batch_wait_ms={BATCH_WAIT_MS:g}")
    print(f"simulated encoder ceiling: {ENCODER_LIMIT_IMAGES_PER_S:.1f} images/s (8 images per 51 ms)")
    simulated = {size: run("simulated", size, SIMULATED, True) for size in (1, 8)}
    demo = {size: run("demo-clip", size, {}, False) for size in (1, 8)}
    print(f"demo_clip_batching_gain={demo[8][8] / demo[1][8]:.2f}")
    for clients in (8, 16):
        share = 100.0 * simulated[8][clients] / ENCODER_LIMIT_IMAGES_PER_S
        print(f"simulated_batched_{clients}_clients_share_of_encoder_limit={share:.1f} %")
    # 8 closed-loop clients, one full batch per round: images/s = 8 / (51 ms + the time outside it).
    outside_ms = 1000 * (8 / simulated[8][8] - encoder_seconds(8))
    needed_ms = 1000 * (8 / (0.9 * ENCODER_LIMIT_IMAGES_PER_S) - encoder_seconds(8))
    print(f"8 clients: {outside_ms:.1f} ms per 8 images beyond a full batch (90 % needs <= {needed_ms:.1f})")
    print(f"classify_batching_gain={simulated[8][8] / simulated[1][8]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
