"""What a HailoRT failure means at the call that raised it: the one classification table.

A status means different things at different calls (HAILO_INVALID_OPERATION at VLM creation is
another model's KV cache, or a setting HailoRT refuses; at a request it is the request), and some
depend on the release and on optimize_memory_on_device. Each row says where it comes from (HailoRT
release and source file:line); docs/TROUBLESHOOTING.md shows the same table, and a test keeps them
equal. A row that reads "busy, unless the device is free" is ambiguous: load_failures.py settles it
with the device-holder scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Meaning(Enum):
    BUSY = "busy"  # another process holds the device or its GenAI KV cache: wait, retry
    BAD_HEF = "bad HEF"  # the file is missing, corrupt, or built for another device or release
    CONFIGURATION = "configuration"  # a setting or installation HailoRT refuses: fix it, no retry
    DEVICE_FAILED = "device failure"  # the device or its server failed: a fresh worker reopens it
    BAD_REQUEST = "bad request"  # the device refused one request's parameters


class Call(Enum):
    VDEVICE = "VDevice(params)"
    GENAI_CREATE = "VLM(vdevice, hef, ...)"
    GENAI_QUERY = "the new VLM's frame shape, prompt template, context size"
    CLIP_LOAD = "create_infer_model, output format, configure"
    WORK = "a request: tokenize, generate, read, CLIP run"
    RELEASE = "releasing a completion, the VLM, the VDevice"


HEF_STATUSES = frozenset(
    {
        "HAILO_OPEN_FILE_FAILURE",
        "HAILO_FILE_OPERATION_FAILURE",
        "HAILO_INVALID_HEF",
        "HAILO_HEF_FILE_CORRUPTED",
        "HAILO_HEF_NOT_SUPPORTED",
        "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
        "HAILO_INVALID_HEF_USE",
    }
)
BUSY_STATUSES = frozenset({"HAILO_OUT_OF_PHYSICAL_DEVICES", "HAILO_DEVICE_IN_USE"})
OPTIMIZE_HINT = (
    "set hailo.optimize_memory_on_device: false (with it on, HailoRT refuses a HEF already on the "
    "device, and one without host-tokenization data)"
)


@dataclass(frozen=True)
class Rule:
    call: Call
    statuses: frozenset[str]  # HAILO_* names; empty: any status the call's other rows do not name
    meaning: Meaning
    source: str  # the HailoRT release(s) and source lines the row comes from
    unless_free: Meaning | None = None  # ambiguous: `meaning` while another process holds the device
    optimize: bool | None = None  # only when optimize_memory_on_device was (True) / was not (False) passed
    since: tuple[int, int, int] | None = None  # only from this HailoRT release on
    hint: str = "see hailort.log"  # what to do about a configuration error


ANY: frozenset[str] = frozenset()  # a call's default row


TABLE: tuple[Rule, ...] = (
    Rule(
        Call.VDEVICE,
        BUSY_STATUSES,
        Meaning.BUSY,
        "5.0.1-5.2.0: hailort_server.cpp VDeviceManager::create_vdevice waits 5 s, then 73 "
        "(v5.1.1:54-84); vdevice_hrpc_client.cpp makes it 74 (v5.1.1:60-71)",
    ),
    Rule(
        Call.VDEVICE,
        frozenset({"HAILO_INVALID_DRIVER_VERSION"}),
        Meaning.CONFIGURATION,
        "5.0.1-5.2.0: hailort_driver.cpp (v5.1.1:201), driver and library of different releases",
        hint="install HailoRT and its driver from one release (sudo apt install hailo-h10-all), reboot",
    ),
    Rule(Call.VDEVICE, ANY, Meaning.DEVICE_FAILED, "any other status"),
    Rule(
        Call.GENAI_CREATE,
        BUSY_STATUSES,
        Meaning.BUSY,
        "5.0.1-5.2.0: the VLM's server-side VDevice (vlm_server.cpp v5.1.1:76, v5.2.0:211), "
        "refused like VDevice(params)",
    ),
    Rule(
        Call.GENAI_CREATE,
        HEF_STATUSES,
        Meaning.BAD_HEF,
        "5.0.1-5.2.0: VLMParams::set_model (vlm.cpp v5.1.1:43), the server parsing the HEF",
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_INVALID_ARGUMENT"}),
        Meaning.BAD_HEF,
        "5.0.1-5.2.0: the HEF's GenAI config lacks a key (vlm_server.cpp v5.1.1:57, "
        "llm_server.cpp v5.1.1:110)",
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_INVALID_OPERATION"}),
        Meaning.CONFIGURATION,
        "5.2.0: optimize_memory_on_device with the HEF already on the device (vlm.cpp:93-94)",
        optimize=True,
        since=(5, 2, 0),
        hint=OPTIMIZE_HINT,
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_NOT_AVAILABLE", "HAILO_NOT_IMPLEMENTED"}),
        Meaning.CONFIGURATION,
        "5.1.0-5.2.0: optimize_memory_on_device without a token embedder or tokenizer, or in a library "
        "built without host tokenization (vlm.cpp v5.1.0:101,147; v5.1.1:101,149; v5.2.0:107,131,160)",
        optimize=True,
        hint=OPTIMIZE_HINT,
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_NOT_SUPPORTED"}),
        Meaning.CONFIGURATION,
        "5.0.1-5.2.0: GenAI on a VDevice without the scheduler (genai_common.cpp v5.1.1:22-23)",
        hint="open the VDevice with its default scheduler",
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_INVALID_OPERATION"}),
        Meaning.BUSY,
        "5.0.1-5.1.1: inferred, another LLM/VLM holds the KV cache (these servers have no KV-cache "
        "check; the status is not in their sources); any release: a refusal only hailort.log explains",
        unless_free=Meaning.CONFIGURATION,
    ),
    Rule(
        Call.GENAI_CREATE,
        frozenset({"HAILO_COMMUNICATION_CLOSED", "HAILO_TIMEOUT"}),
        Meaning.BUSY,
        "5.2.0: the server refuses a second KV cache (vlm_server.cpp:506-509) and drops the session "
        "unanswered (server_main.cpp:116-123); else the server or the link failed",
        unless_free=Meaning.DEVICE_FAILED,
    ),
    Rule(Call.GENAI_CREATE, ANY, Meaning.DEVICE_FAILED, "any other status"),
    Rule(
        Call.GENAI_QUERY,
        frozenset({"HAILO_NOT_AVAILABLE"}),
        Meaning.BAD_HEF,
        "5.0.1-5.2.0: the HEF has no prompt template (vlm.cpp v5.0.1:213, v5.1.1:340, v5.2.0:357)",
    ),
    Rule(Call.GENAI_QUERY, ANY, Meaning.DEVICE_FAILED, "any other status"),
    Rule(Call.CLIP_LOAD, HEF_STATUSES | {"HAILO_NOT_FOUND"}, Meaning.BAD_HEF, "5.0.1-5.2.0: Hef parsing"),
    Rule(
        Call.CLIP_LOAD,
        frozenset({"HAILO_INVALID_ARGUMENT"}),
        Meaning.CONFIGURATION,
        "5.0.1-5.2.0: an output format HailoRT cannot convert to, e.g. uint8 from a 16-bit output "
        "(transform.cpp v5.2.0:53-55)",
        hint="check hailo.clip_output and resources.max_batch_size",
    ),
    Rule(
        Call.CLIP_LOAD,
        frozenset({"HAILO_TIMEOUT", "HAILO_COMMUNICATION_CLOSED", "HAILO_DRIVER_OPERATION_FAILED"}),
        Meaning.DEVICE_FAILED,
        "5.0.1-5.2.0: the link to the device",
    ),
    Rule(Call.CLIP_LOAD, ANY, Meaning.BAD_HEF, "any other status (hailort.log has the reason)"),
    Rule(
        Call.WORK,
        frozenset({"HAILO_INVALID_ARGUMENT"}),
        Meaning.BAD_REQUEST,
        "5.0.1-5.2.0: validate_generator_params (vlm.cpp v5.0.1:329-337)",
    ),
    Rule(Call.WORK, ANY, Meaning.DEVICE_FAILED, "any other status"),
    Rule(
        Call.RELEASE,
        ANY,
        Meaning.DEVICE_FAILED,
        "5.0.1-5.2.0: not wrapped in ExceptionWrapper (pyhailort.py v5.1.1:3318, 4044, 4620); "
        "logged, the next request or load finds out",
    ),
)


def release_of(version: str) -> tuple[int, int, int] | None:
    """(5, 1, 1) for '5.1.1'; None when the version cannot be read."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def classify(call: Call, status: str | None, optimize: bool, version: str) -> Rule:
    """The first row for `call` that names `status` and fits the release and setting; else its default.

    A release that cannot be read counts as the newest known one (rows with `since` apply).
    """
    release = release_of(version)
    for rule in TABLE:
        if rule.call is not call or (rule.statuses and status not in rule.statuses):
            continue
        if rule.optimize is not None and rule.optimize != optimize:
            continue
        if rule.since is not None and release is not None and release < rule.since:
            continue
        return rule
    raise LookupError(f"no default row for {call}")  # every call has one: a test checks it
