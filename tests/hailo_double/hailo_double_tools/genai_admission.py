"""Whether the device lets a new VLM/LLM in: the checks HailoRT makes around creating one, per release.

In the real order (libhailort/src/genai/vlm/vlm.cpp VLM::Impl::create_unique, the bindings before it):
1. the HEF file must exist on the host: status 13 (VLMParams::set_model, vlm.cpp v5.1.1:43);
2. GenAI needs the scheduler: status HAILO_NOT_SUPPORTED (genai_common.cpp v5.1.1:22-23);
3. 5.2.0 only: the server takes the device's single KV cache as it accepts the session, and when
   another model has it, logs "Failed to acquire KV-Cache. KV-Cache is already in use by another
   model!" (vlm_server.cpp v5.2.0:506-509; llm_server.cpp v5.2.0:1170-1171) and drops the session
   without a reply (server_main.cpp v5.2.0:116-123): the client reads a transport failure, here
   status 62 (HAILO_COMMUNICATION_CLOSED) or, with HAILO_DOUBLE_SESSION_DROP_STATUS=4, a timeout;
4. 5.2.0 only: optimize_memory_on_device=True while the HEF is already on the server is status 6
   "the HEF must not exist on the server" (vlm.cpp v5.2.0:93-94);
5. the server reads the HEF: 92 / 26 (hef_files.load_hef);
6. before 5.2.0 the server has no KV-cache check (mark_kv_cache_in_use first appears in 5.2.0); the
   double refuses a second model with status 6 in the create reply (inferred, unverified);
7. 5.1.0 / 5.1.1: optimize_memory_on_device=True with the HEF on the server fails after the server
   made the model, with status 65 "Token embedder buffer is not available" (vlm.cpp v5.1.0:147,
   v5.1.1:149).
"""

from __future__ import annotations

import logging

from hailo_double_tools.hef_files import hef_on_server, require_file
from hailo_double_tools.locks import KVCacheLease
from hailo_double_tools.native import (
    HAILO_INVALID_OPERATION,
    HAILO_NOT_SUPPORTED,
    SchedulingAlgorithm,
    VDeviceParams,
    fail,
)
from hailo_double_tools.settings import active_profile, session_drop_status

log = logging.getLogger("hailort")
KV_CACHE_IN_USE = "Failed to acquire KV-Cache. KV-Cache is already in use by another model!"


def _acquire_kv_cache(kind: str) -> KVCacheLease:
    lease = KVCacheLease.try_acquire()
    if lease is not None:
        return lease
    log.error(KV_CACHE_IN_USE)
    if active_profile().kv_refusal_drops_session:
        log.error("Failed to create %sServer, status = %d", kind.upper(), HAILO_INVALID_OPERATION)
        fail(session_drop_status(), f"Failed to create {kind}: the server closed the session unanswered")
    fail(HAILO_INVALID_OPERATION, f"Failed to create {kind}: {KV_CACHE_IN_USE}")


def admit_before_hef(
    params: VDeviceParams, hef_path: str, kind: str, optimize_memory: bool
) -> KVCacheLease | None:
    """Steps 1-4; on 5.2.0 returns the KV cache taken for the model (before: None, see admit_after_hef)."""
    require_file(hef_path)
    if params.scheduling_algorithm is SchedulingAlgorithm.NONE:
        fail(HAILO_NOT_SUPPORTED, "Working without scheduler is not supported for GenAI")
    profile = active_profile()
    if not profile.kv_refusal_drops_session:
        return None
    lease = _acquire_kv_cache(kind)
    if (
        optimize_memory
        and profile.optimize_hef_on_server_status == HAILO_INVALID_OPERATION
        and hef_on_server(hef_path)
    ):
        lease.release()
        fail(
            HAILO_INVALID_OPERATION,
            f"Failed to create {kind}. When 'optimize_memory_on_device' is set to true, the HEF must not "
            "exist on the server.",
        )
    return lease


def admit_after_hef(
    lease: KVCacheLease | None, hef_path: str, kind: str, optimize_memory: bool
) -> KVCacheLease:
    """Steps 6-7, once the HEF was read: the KV cache held for the model."""
    if lease is None:
        lease = _acquire_kv_cache(kind)
    status = active_profile().optimize_hef_on_server_status
    if optimize_memory and status not in (None, HAILO_INVALID_OPERATION) and hef_on_server(hef_path):
        lease.release()
        fail(status, "Token embedder buffer is not available")
    return lease
