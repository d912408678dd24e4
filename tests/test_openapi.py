"""The OpenAPI document: what the server serves is the committed docs/openapi.json, and it is valid
OpenAPI 3.1."""

from __future__ import annotations

import json

from openapi_spec_validator import validate
from service import ROOT, Service


def test_served_document_is_the_committed_one_and_valid(service: Service) -> None:
    served = service.http.get("/openapi.json")
    assert served.status_code == 200
    committed = json.loads((ROOT / "docs/openapi.json").read_text())
    assert served.json() == committed, "docs/openapi.json is stale: run `make openapi`"
    assert committed["openapi"] == "3.1.0"
    validate(committed)
