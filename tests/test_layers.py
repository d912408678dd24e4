"""Package dependencies go one way: supervisor and api -> scheduler -> npu_worker's shared modules.

npu_worker holds the contract every process shares (the wire protocol, the model and chat types,
configuration, logging, the child command line, image conversion) and the worker process itself.
The shared modules import nothing of the worker's internals, and nothing outside npu_worker imports
those internals - except `hailo-vision doctor`, which checks the device with the backend's own code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("supervisor", "api", "scheduler", "npu_worker")
SHARED = {
    "npu_worker.protocol",
    "npu_worker.codec",
    "npu_worker.wire_fields",
    "npu_worker.states",
    "npu_worker.backend",
    "npu_worker.config",
    "npu_worker.config_load",
    "npu_worker.logs",
    "npu_worker.child",
    "npu_worker.images",
}
# Which top-level packages each may import (besides itself).
ALLOWED = {
    "npu_worker": set(),
    "scheduler": {"npu_worker"},
    "api": {"scheduler", "npu_worker"},
    "supervisor": {"scheduler", "npu_worker"},
}
DOCTOR_MAY_USE = ("npu_worker.hailo",)


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def is_shared(name: str) -> bool:
    return any(name == shared or name.startswith(shared + ".") for shared in SHARED)


def test_packages_depend_one_way() -> None:
    wrong = [
        f"{module_name(path)} imports {name}"
        for package in PACKAGES
        for path in modules(package)
        for name in project_imports(path)
        if name.split(".")[0] not in ALLOWED[package] | {package}
    ]
    assert wrong == []


def test_only_the_shared_modules_of_npu_worker_are_used_by_other_packages() -> None:
    wrong = []
    for package in ("supervisor", "api", "scheduler"):
        for path in modules(package):
            name = module_name(path)
            for imported in project_imports(path):
                if imported.split(".")[0] != "npu_worker" or imported == "npu_worker" or is_shared(imported):
                    continue
                if name == "supervisor.doctor" and imported.startswith(DOCTOR_MAY_USE):
                    continue
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_the_shared_modules_import_only_each_other() -> None:
    wrong = [
        f"{name} imports {imported}"
        for path in modules("npu_worker")
        if is_shared(name := module_name(path))
        for imported in project_imports(path)
        if imported != "npu_worker" and not is_shared(imported)
    ]
    assert wrong == []
