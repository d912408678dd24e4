"""The classification table of HailoRT failures: its shape, its choices per release, and its documentation.

docs/TROUBLESHOOTING.md shows the same table; the test renders npu_worker.hailo.failures.TABLE and
compares, so the two cannot drift apart. Status numbers come from the double's copy of hailort.h.
"""

from __future__ import annotations

from pathlib import Path

import hailo_double  # noqa: F401  (puts the double, and its copy of hailort.h, on the path)
import pytest
from hailo_double_tools.native import STATUS

from npu_worker.hailo.failures import ANY, TABLE, Call, Meaning, Rule, classify

DOC = Path(__file__).resolve().parent.parent / "docs" / "TROUBLESHOOTING.md"
HEADER = "| call | status | when | meaning | where it comes from |"


def doc_row(rule: Rule) -> str:
    statuses = ", ".join(f"{name} ({STATUS[name]})" for name in sorted(rule.statuses, key=STATUS.__getitem__))
    when = []
    if rule.optimize is not None:
        when.append(f"optimize_memory_on_device {'on' if rule.optimize else 'off'}")
    if rule.since is not None:
        when.append(f"HailoRT {'.'.join(map(str, rule.since))} and later")
    meaning = rule.meaning.value
    if rule.unless_free is not None:
        meaning = f"{meaning} while another process holds the device, else {rule.unless_free.value}"
    cells = (rule.call.value, statuses or "any other", "; ".join(when) or "always", meaning, rule.source)
    return f"| {' | '.join(cells)} |"


def test_the_documented_table_is_the_code_table() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # after the header and its |---| line
    documented = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        documented.append(line)
    assert documented == [doc_row(rule) for rule in TABLE]


def test_every_call_ends_with_one_default_row() -> None:
    for call in Call:
        rows = [rule for rule in TABLE if rule.call is call]
        defaults = [rule for rule in rows if rule.statuses == ANY]
        assert defaults == [rows[-1]], call
        assert defaults[0].unless_free is None and defaults[0].optimize is None and defaults[0].since is None


@pytest.mark.parametrize(
    ("call", "status", "optimize", "version", "meaning", "unless_free"),
    [
        (Call.VDEVICE, "HAILO_OUT_OF_PHYSICAL_DEVICES", False, "5.1.1", Meaning.BUSY, None),
        (Call.VDEVICE, "HAILO_INVALID_DRIVER_VERSION", False, "5.1.1", Meaning.CONFIGURATION, None),
        (Call.GENAI_CREATE, "HAILO_DEVICE_IN_USE", False, "5.2.0", Meaning.BUSY, None),
        (Call.GENAI_CREATE, "HAILO_HEF_NOT_SUPPORTED", False, "5.0.1", Meaning.BAD_HEF, None),
        # HAILO_INVALID_OPERATION: a setting on 5.2.0 with optimize on, else maybe another KV cache
        (Call.GENAI_CREATE, "HAILO_INVALID_OPERATION", True, "5.2.0", Meaning.CONFIGURATION, None),
        (Call.GENAI_CREATE, "HAILO_INVALID_OPERATION", True, "5.3.0", Meaning.CONFIGURATION, None),
        (Call.GENAI_CREATE, "HAILO_INVALID_OPERATION", True, "5.1.1", Meaning.BUSY, Meaning.CONFIGURATION),
        (Call.GENAI_CREATE, "HAILO_INVALID_OPERATION", False, "5.2.0", Meaning.BUSY, Meaning.CONFIGURATION),
        (Call.GENAI_CREATE, "HAILO_NOT_AVAILABLE", True, "5.1.1", Meaning.CONFIGURATION, None),
        (Call.GENAI_CREATE, "HAILO_NOT_AVAILABLE", False, "5.1.1", Meaning.DEVICE_FAILED, None),
        (
            Call.GENAI_CREATE,
            "HAILO_COMMUNICATION_CLOSED",
            False,
            "5.2.0",
            Meaning.BUSY,
            Meaning.DEVICE_FAILED,
        ),
        (Call.GENAI_CREATE, "HAILO_TIMEOUT", True, "5.2.0", Meaning.BUSY, Meaning.DEVICE_FAILED),
        (Call.GENAI_CREATE, None, False, "5.2.0", Meaning.DEVICE_FAILED, None),
        (Call.GENAI_QUERY, "HAILO_NOT_AVAILABLE", False, "5.1.0", Meaning.BAD_HEF, None),
        (Call.CLIP_LOAD, "HAILO_INVALID_ARGUMENT", False, "5.1.1", Meaning.CONFIGURATION, None),
        (Call.CLIP_LOAD, "HAILO_TIMEOUT", False, "5.1.1", Meaning.DEVICE_FAILED, None),
        (Call.CLIP_LOAD, "HAILO_INVALID_OPERATION", False, "5.1.1", Meaning.BAD_HEF, None),
        (Call.WORK, "HAILO_INVALID_ARGUMENT", False, "5.0.1", Meaning.BAD_REQUEST, None),
        (Call.WORK, "HAILO_INVALID_OPERATION", False, "5.0.1", Meaning.DEVICE_FAILED, None),
        (Call.RELEASE, "HAILO_COMMUNICATION_CLOSED", False, "5.1.1", Meaning.DEVICE_FAILED, None),
    ],
)
def test_a_status_means_what_its_call_and_release_make_it(
    call: Call,
    status: str | None,
    optimize: bool,
    version: str,
    meaning: Meaning,
    unless_free: Meaning | None,
) -> None:
    rule = classify(call, status, optimize, version)
    assert (rule.meaning, rule.unless_free) == (meaning, unless_free)


def test_an_unreadable_release_counts_as_the_newest() -> None:
    rule = classify(Call.GENAI_CREATE, "HAILO_INVALID_OPERATION", True, "unknown")
    assert rule.meaning is Meaning.CONFIGURATION
