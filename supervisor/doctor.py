"""`hailo-vision doctor [--config FILE] [--device NODE]`: is this machine ready to serve on the Hailo-10H?

Checks, in order: the device node, the user's right to open it, HailoRT's Python package (version,
GenAI API, detected features), the kernel driver and firmware versions, the configured HEFs and CLIP
text encoder, and which processes hold the device. Each finding prints as OK, WARN or FAIL with the
fix; the exit status is 0 when everything is OK, 1 otherwise.

Non-invasive by design: nothing is loaded on the device (loading the VLM takes it from hailo-ollama
or a running hailo-vision for ~10 s). HEFs are checked on disk (header, and HailoRT's host-side
parser where available); the firmware is queried only while no other process holds the device.
"""

from __future__ import annotations

import grp
import importlib
import json
import os
import pwd
import stat
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from npu_worker.backend import ModelLoadError
from npu_worker.config import Config, ConfigError
from npu_worker.config_load import load_config
from npu_worker.hailo.backend import resolve_hef
from npu_worker.hailo.features import detect_features
from npu_worker.hailo.holders import Holder, device_nodes, scan_holders

Level = Literal["OK", "WARN", "FAIL"]
HEF_MAGIC = b"\x01HEF"
DRIVER_MODULES = ("hailo1x_pci", "hailo_pci")
OLLAMA_URL = "http://localhost:8000"
INSTALL_FIX = (
    "install HailoRT and the Hailo-10H driver: `sudo apt install dkms hailo-h10-all`, then reboot; "
    "`hailortcli fw-control identify` should then name the device"
)


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    message: str
    fix: str = ""


def _mode(path: Path) -> tuple[str, str, str]:
    """(permissions, owner, group) of a file, like ls -l shows them."""
    info = path.stat()
    owner = pwd.getpwuid(info.st_uid).pw_name if _known_uid(info.st_uid) else str(info.st_uid)
    group = grp.getgrgid(info.st_gid).gr_name if _known_gid(info.st_gid) else str(info.st_gid)
    return stat.filemode(info.st_mode), owner, group


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _known_gid(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def check_device(node: Path | None) -> Finding:
    if node is None or not node.exists():
        where = node or "/dev/hailo0 (or /dev/h1x-0)"
        return Finding(
            "FAIL",
            "device",
            f"no Hailo device: {where} does not exist on this machine",
            "check the AI HAT+ 2 is seated and its ribbon cable is in the Pi 5's PCIe connector; "
            f"`lsmod | grep hailo` and `dmesg | grep -i hailo` show whether the driver bound; {INSTALL_FIX}. "
            "Without the NPU, run hailo-vision with backend: onnx (the CPU backend)",
        )
    if not stat.S_ISCHR(node.stat().st_mode):
        return Finding("WARN", "device", f"{node} exists but is not a character device", INSTALL_FIX)
    permissions, owner, group = _mode(node)
    return Finding("OK", "device", f"{node} ({permissions} {owner}:{group})")


def check_access(node: Path) -> Finding:
    """May this user open the node read-write? If not, name the group and the usermod fix."""
    if os.access(node, os.R_OK | os.W_OK):
        return Finding("OK", "access", f"this user may open {node}")
    permissions, owner, group = _mode(node)
    user = pwd.getpwuid(os.getuid()).pw_name
    if group == "root" or not node.stat().st_mode & stat.S_IRWXG:
        fix = (
            f"{node} is only for {owner}; HailoRT's udev rule (from hailo-h10-all) makes it usable by "
            "a group: reinstall it, or `sudo udevadm trigger` after adding one"
        )
    elif group in _groups_in_file(user):
        fix = f"{user} is in group {group} but this login predates it: log out and in again (or reboot)"
    else:
        fix = (
            f"add the user to group {group}: `sudo usermod -aG {group} {user}`, then log out and in; "
            f"the service's user too: `sudo usermod -aG {group} hailo-vision`, then restart the service"
        )
    return Finding("FAIL", "access", f"user {user} may not open {node} ({permissions} {owner}:{group})", fix)


def _groups_in_file(user: str) -> set[str]:
    return {g.gr_name for g in grp.getgrall() if user in g.gr_mem}


def import_hailort() -> tuple[Finding, ModuleType | None, ModuleType | None]:
    """HailoRT's package as this Python sees it (the service runs on the same interpreter)."""
    try:
        platform = importlib.import_module("hailo_platform")
    except Exception as exc:  # ImportError, or the wheel's own version/library checks failing
        return (
            Finding(
                "FAIL",
                "hailort",
                f"HailoRT's Python package hailo_platform cannot be imported here ({exc})",
                f"{INSTALL_FIX}. A virtual environment must see it: create it with "
                "`python3 -m venv --system-site-packages`, or install Hailo's hailort wheel into it",
            ),
            None,
            None,
        )
    version = str(getattr(platform, "__version__", "unknown"))
    try:
        genai = importlib.import_module("hailo_platform.genai")
    except ImportError as exc:
        fix = "upgrade HailoRT to 5.0.1 or later (`sudo apt install hailo-h10-all`)"
        return Finding("FAIL", "hailort", f"HailoRT {version} has no GenAI API ({exc})", fix), platform, None
    features = detect_features(platform, genai)
    location = Path(platform.__file__ or ".").parent
    message = f"HailoRT {version} ({location}); features: {', '.join(features.names)}"
    if not version.startswith("5."):
        return Finding("WARN", "hailort", message, "hailo-vision is built for HailoRT 5.x"), platform, genai
    return Finding("OK", "hailort", message), platform, genai


def driver_version() -> tuple[str, str] | None:
    """(module, version) of the loaded Hailo PCIe driver, from /sys/module."""
    for module in DRIVER_MODULES:
        path = Path("/sys/module") / module / "version"
        if path.is_file():
            return module, path.read_text().strip()
    return None


def check_driver(hailort_version: str | None) -> Finding:
    found = driver_version()
    if found is None:
        return Finding("FAIL", "driver", "no Hailo PCIe driver is loaded (hailo1x_pci)", INSTALL_FIX)
    module, version = found
    if hailort_version and version.split(".")[:2] != hailort_version.split(".")[:2]:
        return Finding(
            "FAIL",
            "driver",
            f"driver {module} {version} does not match HailoRT {hailort_version}",
            "HailoRT and its driver must be the same release: `sudo apt install hailo-h10-all`, reboot",
        )
    return Finding("OK", "driver", f"{module} {version}")


def check_firmware(platform: ModuleType, holders: tuple[Holder, ...]) -> Finding:
    """The firmware version through Device(...).control, only while nobody else holds the device."""
    if holders:
        return Finding("OK", "firmware", "not queried while another process holds the device (non-invasive)")
    try:
        device = platform.Device(platform.Device.scan()[0])
        try:
            info = device.control.identify()
        finally:
            device.release()
    except Exception as exc:  # any failure here is a finding, never a crash of the doctor
        return Finding("WARN", "firmware", f"cannot identify the device ({exc})", INSTALL_FIX)
    board = str(info.board_name).rstrip("\0")  # the device's fixed-size field, NUL-padded
    return Finding("OK", "firmware", f"{info.device_architecture} firmware {info.firmware_version} ({board})")


def _hef_finding(path: Path, topic: str, platform: ModuleType | None) -> Finding:
    """HailoRT's host-side HEF parser where installed (no device involved), else the file header."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(HEF_MAGIC))
    except OSError as exc:
        return Finding("FAIL", topic, f"{path}: cannot be read ({exc})", "check its permissions")
    size = path.stat().st_size
    shown = f"{size / 1e9:.2f} GB" if size >= 10**8 else f"{size} bytes"
    parser = getattr(platform, "HEF", None)
    if parser is None:
        if magic != HEF_MAGIC:
            return Finding("FAIL", topic, f"{path}: not a HEF file (bad header)", "download the HEF again")
        return Finding("OK", topic, f"{path} ({shown}, HEF header valid; not loaded on the device)")
    try:
        groups = ", ".join(parser(str(path)).get_network_group_names())
    except Exception as exc:  # HailoRT's parser rejects it: wrong version, wrong device or corrupted
        return Finding(
            # A valid header may still be a good GenAI HEF that only the device side reads in full.
            "WARN" if magic == HEF_MAGIC else "FAIL",
            topic,
            f"{path}: HailoRT cannot parse it ({exc})",
            "use a HEF compiled for Hailo-10H and this HailoRT release (hailo_model_zoo_genai lists them)",
        )
    return Finding("OK", topic, f"{path} ({shown}, network groups: {groups}; not loaded on the device)")


def check_models(config: Config, platform: ModuleType | None) -> Iterator[Finding]:
    """The configured HEFs and the CLIP text encoder, on disk."""
    hailo = config.hailo
    targets = [("vlm hef", config.model.path, hailo.vlm_hef, "hailo.vlm_hef")]
    if config.clip.enabled:
        targets.append(("clip hef", config.clip.path, hailo.clip_hef, "hailo.clip_hef"))
    for topic, directory, configured, key in targets:
        try:
            path = resolve_hef(directory, configured, key)
        except ModelLoadError as exc:
            yield Finding("FAIL", topic, exc.message, f"put the HEF there or set {key} in {config.source}")
            continue
        yield _hef_finding(path, topic, platform)
    if config.clip.enabled:
        folder = Path(config.clip.path)
        missing = [
            n for n in ("config.json", "tokenizer.json", "onnx/text_model.onnx") if not (folder / n).is_file()
        ]
        if missing:
            yield Finding(
                "FAIL",
                "clip text",
                f"{folder}: missing {', '.join(missing)} (the CPU text encoder of the CLIP model)",
                "clip.path must be the CLIP export (optimum layout) of the same model as the CLIP HEF",
            )
        else:
            yield Finding("OK", "clip text", f"{folder / 'onnx/text_model.onnx'} (runs on the CPU)")


def ollama_models(timeout_s: float = 1.0) -> list[str]:
    """Models hailo-ollama has loaded (GET /api/ps), best effort."""
    try:
        with urllib.request.urlopen(f"{OLLAMA_URL}/api/ps", timeout=timeout_s) as response:  # noqa: S310 - a fixed http URL
            data = json.load(response)
    except (OSError, ValueError):
        return []
    return [str(m.get("name") or m.get("model")) for m in data.get("models", []) if isinstance(m, dict)]


def check_holders(holders: tuple[Holder, ...], unreadable: int) -> Iterator[Finding]:
    if not holders:
        note = (
            f" ({unreadable} processes of other users not inspected; sudo shows them)" if unreadable else ""
        )
        yield Finding("OK", "in use", f"no other process holds the device{note}")
        return
    for holder in holders:
        who = f"pid {holder.pid} ({holder.name}): {holder.cmdline[:120]}"
        if "npu_worker" in holder.cmdline:
            yield Finding("OK", "in use", f"held by hailo-vision's own NPU worker, {who}")
        elif "ollama" in holder.name or "ollama" in holder.cmdline:
            model = next(iter(ollama_models()), "<model>")
            yield Finding(
                "WARN",
                "in use",
                f"held by hailo-ollama, {who}",
                "hailo-ollama keeps its model for keep_alive (5 min by default); free the device now with "
                f'curl -X POST {OLLAMA_URL}/api/generate -d \'{{"model": "{model}", "keep_alive": 0}}\'',
            )
        else:
            yield Finding(
                "WARN",
                "in use",
                f"held by {who}",
                f"stop it (`kill {holder.pid}`) if it should not use the NPU",
            )


def diagnose(config: Config, node: Path | None) -> Iterator[Finding]:
    yield check_device(node)
    present = node is not None and node.exists()
    if present:
        assert node is not None
        yield check_access(node)
    finding, platform, genai = import_hailort()
    yield finding
    version = str(getattr(platform, "__version__", "")) if platform else None
    if present:
        yield check_driver(version)
    yield from check_models(config, platform)
    if present:
        assert node is not None
        scan = scan_holders([node])
        if platform is not None and genai is not None:
            yield check_firmware(platform, scan.holders)
        yield from check_holders(scan.holders, scan.unreadable)
    if config.backend == "onnx":
        yield Finding(
            "WARN",
            "config",
            f"{config.source}: backend is onnx, the NPU is not used",
            "set backend: hailo or auto",
        )


def run(config_file: str | None, device: str | None) -> int:
    """Print every finding; 0 when all are OK."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        findings = [Finding("FAIL", "config", str(exc), "fix the file; see docs/TROUBLESHOOTING.md")]
    else:
        nodes = device_nodes()
        node = Path(device) if device else (nodes[0] if nodes else None)
        findings = list(diagnose(config, node))
    for finding in findings:
        print(f"{finding.level:<4} {finding.topic}: {finding.message}")
        if finding.fix:
            print(f"     fix: {finding.fix}")
    bad = [f for f in findings if f.level != "OK"]
    print(f"hailo-vision doctor: {len(findings) - len(bad)} OK, {len(bad)} to fix")
    return 1 if bad else 0
