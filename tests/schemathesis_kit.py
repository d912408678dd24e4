"""Generated requests from the published OpenAPI document, against a running service (test and bench).

schemathesis generates each operation's requests from docs/openapi.json (valid and invalid bodies,
path parameters) with hypothesis; every answer is checked: no 5xx, a documented status and media
type, and a body that matches the document's schema. The demo models answer fast enough that every
operation, generations included, is exercised for real.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi import from_path
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT = Path(__file__).resolve().parent.parent / "docs/openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
REQUEST_TIMEOUT_S = 120.0  # far past any answer of the demo models: hitting it means a hang


@dataclass
class Outcome:
    """What a run found: cases sent, server errors, answers that break the document, hangs."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.server_errors or self.violations or self.hangs)

    def summary(self) -> str:
        problems = [*self.server_errors, *self.violations, *self.hangs][:10]
        return "\n".join([f"cases={self.cases} statuses={dict(self.statuses)}", *problems])


def operations() -> Iterator[Any]:
    for result in from_path(str(DOCUMENT)).get_all_operations():
        yield result.ok()


def run(base_url: str, examples_per_operation: int, derandomize: bool) -> Outcome:
    """Send up to `examples_per_operation` generated requests to every operation, checking each
    answer; `derandomize`: the same requests every run (the test suite), else new ones (the bench)."""
    outcome = Outcome()
    for operation in operations():
        _exercise(operation, base_url, examples_per_operation, derandomize, outcome)
    return outcome


def _exercise(operation: Any, base_url: str, examples: int, derandomize: bool, outcome: Outcome) -> None:
    """One operation's generated cases, each sent and checked; what fails is counted, never raised."""
    strategy = operation.as_strategy()
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        outcome.cases += 1
        try:
            response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
        except Exception as error:  # a closed connection or a timeout: the server did not answer
            outcome.hangs.append(f"{label}: no answer ({error!r:.200})")
            return
        outcome.statuses[response.status_code] += 1
        if response.status_code >= 500:
            outcome.server_errors.append(f"{label}: {response.status_code} {response.text[:300]}")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            outcome.violations.append(f"{label}: {group.exceptions[0]!s:.400}")

    one()
