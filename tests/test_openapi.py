"""The OpenAPI document: what the server serves is the committed docs/openapi.json, it is valid OpenAPI
3.1, and it matches what the server accepts (every real client's request validates against it; bodies
with a wrong type or a missing field fail both the document and the server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from client_requests import ClientRequest, client_requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from service import ROOT, Service

DOCUMENT = json.loads((ROOT / "docs/openapi.json").read_text())
CASES = [c for c in client_requests() if c.body is not None]
TEXT = [{"role": "user", "content": "hi"}]


def _errors(path: str, body: Any) -> list[str]:
    """What the document says is wrong with `body` as the request of POST `path`."""
    schema = DOCUMENT["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    return [error.message for error in validator.iter_errors(body)]


def test_served_document_is_the_committed_one_and_valid(service: Service) -> None:
    served = service.http.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT, "docs/openapi.json is stale: run `make openapi`"
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(DOCUMENT)


ROUTES = [
    ("get", "/api/tags"),
    ("post", "/api/chat"),
    ("post", "/v1/responses"),
    ("post", "/v1/caption"),
    ("post", "/v1/vision/analyze"),
    ("post", "/chat/completions"),
    ("get", "/models/{model_id}"),
    ("get", "/"),
]


def test_every_route_is_documented() -> None:
    for method, path in ROUTES:
        assert method in DOCUMENT["paths"][path], (method, path)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_client_requests_validate_against_the_document(case: ClientRequest) -> None:
    assert _errors(case.path, case.body) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": TEXT, "temperature": "hot"}),
        ("/v1/chat/completions", {"messages": [{"role": "tool", "content": "x"}]}),
        ("/v1/responses", {"input": 5}),
        ("/v1/responses", {"input": "hi", "max_output_tokens": 0}),
        ("/api/chat", {"messages": TEXT}),
        ("/api/chat", {"model": "qwen2-vl-demo", "messages": TEXT, "keep_alive": "soon"}),
        ("/api/generate", {"model": "qwen2-vl-demo", "prompt": "hi", "options": {"top_p": 2}}),
        ("/api/embed", {"model": "clip-demo", "input": [3]}),
        ("/v1/classify", {"image": "x", "prompts": "red"}),
        ("/v1/caption", {"image": "x", "max_length": 0}),
        ("/v1/vision/analyze", {"images": [], "prompt": "?"}),
    ],
)
def test_bodies_the_document_refuses_the_server_refuses(service: Service, path: str, body: Any) -> None:
    assert _errors(path, body), "the document accepts it"
    assert service.http.post(path, json=body).status_code == 400
