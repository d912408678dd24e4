"""Generated API tests at length: schemathesis over every operation of docs/openapi.json, on the demo models.

Starts the service, sends `--per-operation` generated requests to each of its operations (new ones
each run), and checks every answer: no 5xx, documented statuses and media types, bodies that match
the document; a request unanswered within 120 s counts as a hang. The test suite runs the same with
fewer cases (tests/test_generated_requests.py). Last line `schemathesis_cases=N server_errors=0`
(target: N >= 2000, 0 server errors, 0 violations, 0 hangs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "models"))

import schemathesis_kit  # noqa: E402
from service import Service  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-operation", type=int, default=120, help="generated cases per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Path(tmp), {"logging": {"level": "warning"}}).wait_ready()
        try:
            started = time.monotonic()
            outcome = schemathesis_kit.run(service.base_url, args.per_operation, derandomize=False)
            seconds = time.monotonic() - started
        finally:
            service.stop()
    print(outcome.summary())
    print(f"operations={len(list(schemathesis_kit.operations()))} seconds={seconds:.0f}")
    print(f"violations={len(outcome.violations)} hangs={len(outcome.hangs)}")
    print(f"schemathesis_cases={outcome.cases} server_errors={len(outcome.server_errors)}")
    return 0 if outcome.clean else 1


if __name__ == "__main__":
    sys.exit(main())
