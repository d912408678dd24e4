"""The OpenAPI 3.1 document of the API, built from the endpoint table and the body declarations.

Served at GET /openapi.json and committed as docs/openapi.json (`make openapi` rewrites it; a test
checks that both agree). pydantic's JSON Schema (draft 2020-12) is OpenAPI 3.1's dialect, so the
bodies' schemas go into `components.schemas` as they are.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.endpoints import ENDPOINTS
from api.errors import is_ollama_path
from api.media_types import JSON, SSE
from api.routes_info import VERSION

_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
_REF = "#/components/schemas/{model}"


class OpenAIError(BaseModel):
    """The error body of every route outside /api/."""

    class Detail(BaseModel):
        message: str
        type: str
        param: str | None
        code: str

    error: Detail


class OllamaError(BaseModel):
    """The error body of the /api/ routes (Ollama's)."""

    error: str


class _Schemas(GenerateJsonSchema):
    """pydantic's schemas without the `title` it derives from every field name."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


# A stream's schema is one event's (as schemathesis and OpenAPI 3.2's itemSchema read an SSE stream):
# its `data` is a JSON document, or `[DONE]`.
SSE_EVENT = {
    "type": "object",
    "description": "One server-sent event",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}


def _success_schema(media: str) -> dict[str, Any]:
    if media == SSE:
        return SSE_EVENT
    return {"type": "string"} if media.startswith("text/") else {}


def _operation(endpoint: Any, ollama: bool) -> dict[str, Any]:
    error = {"$ref": _REF.format(model="OllamaError" if ollama else "OpenAIError")}
    success = {media: {"schema": _success_schema(media)} for media in endpoint.answers}
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": f"{endpoint.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', endpoint.path)}".rstrip("_"),
        "responses": {
            "200": {"description": "Success", "content": success},
            "default": {"description": "Error", "content": {JSON: {"schema": error}}},
        },
    }
    if endpoint.body is not None:
        schema = {"$ref": _REF.format(model=endpoint.body.__name__)}
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    names = re.findall(r"\{(\w+)", endpoint.path)
    if names:
        operation["parameters"] = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
        ]
    return operation


@functools.cache
def document() -> dict[str, Any]:
    bodies: set[type[BaseModel]] = {e.body for e in ENDPOINTS if e.body is not None}
    models: list[type[BaseModel]] = sorted([*bodies, OpenAIError, OllamaError], key=lambda m: m.__name__)
    _, definitions = models_json_schema(
        [(m, "validation") for m in models], ref_template=_REF, schema_generator=_Schemas
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        path = _CONVERTOR.sub(r"{\1}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, is_ollama_path(path))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hailo-vision",
            "version": VERSION,
            "description": "Vision-language and CLIP inference on a Raspberry Pi 5 with a Hailo-10H, in "
            "OpenAI's and Ollama's dialects. See docs/API_SPEC.md.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


def text() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document())


if __name__ == "__main__":
    sys.stdout.write(text())
