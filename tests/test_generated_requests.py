"""Generated requests (schemathesis) from the published document against the running service: every
operation, a few cases each, the same ones every run; bench/schemathesis_run.py runs thousands."""

from __future__ import annotations

from pathlib import Path

import schemathesis_kit
from service import Service

PER_OPERATION = 5  # about 160 cases, a fraction of a minute on the demo models


def test_generated_requests_get_documented_answers_and_no_server_error(tmp_path: Path) -> None:
    service = Service(tmp_path).wait_ready()  # its own: generated admin calls move the NPU around
    try:
        outcome = schemathesis_kit.run(service.base_url, PER_OPERATION, derandomize=True)
        assert outcome.cases >= 3 * len(list(schemathesis_kit.operations()))
        assert outcome.clean, outcome.summary()
        assert service.http.get("/health/ready").status_code == 200  # and the service still serves
    finally:
        service.stop()
