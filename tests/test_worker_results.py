"""The worker's results channel: a burst the API has not read yet is queued, never dropped."""

from __future__ import annotations

from pathlib import Path

import zmq

from npu_worker import codec, protocol
from npu_worker.config_load import load_config
from npu_worker.main import WorkerProcess
from npu_worker.protocol import Token


def test_a_burst_of_tokens_the_api_reads_late_arrives_whole(tmp_path: Path) -> None:
    worker = WorkerProcess(load_config(None, env={}), tmp_path)
    burst = 5000  # five times ZeroMQ's default high-water mark
    for index in range(burst):
        worker._emit(Token("r", "x", index))
    assert worker.results_dropped == 0
    pull = worker.context.socket(zmq.PULL)
    pull.bind(protocol.results_endpoint(tmp_path))  # the API arrives only now
    tokens = [codec.decode(pull.recv_multipart()).message for _ in range(burst)]
    ids = [token.id for token in tokens if isinstance(token, Token)]
    assert ids == list(range(burst))
    pull.close(linger=0)
    worker.context.destroy(linger=0)
