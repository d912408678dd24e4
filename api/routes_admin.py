"""The scheduler's admin endpoints, for `hailo-visionctl` and scripts that run hailo-ollama jobs.

GET /admin/status is the machine-readable status; POST /admin/npu/release gives the NPU back now
(after running work; vision keeps off it for scheduler.min_residency_s), POST /admin/npu/load takes
it now. They answer on loopback, or to a client with a valid API key (app.AccessMiddleware).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.routes_info import VERSION
from api.services import services_of
from api.status import status_document


async def admin_status(request: Request) -> Response:
    return JSONResponse(status_document(services_of(request), VERSION))


async def npu_release(request: Request) -> Response:
    scheduler = services_of(request).scheduler
    scheduler.admin_release()
    snapshot = scheduler.snapshot()
    return JSONResponse({"owner": snapshot.owner, "detail": "releasing the NPU after running work"})


async def npu_load(request: Request) -> Response:
    scheduler = services_of(request).scheduler
    scheduler.admin_load()
    snapshot = scheduler.snapshot()
    return JSONResponse(
        {"owner": snapshot.owner, "detail": "taking the NPU (after hailo-ollama's running answer)"}
    )
