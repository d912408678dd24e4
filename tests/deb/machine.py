"""What the package and install.sh tests share: running commands as root and looking at the machine."""

import grp
import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

ROOT_ONLY = pytest.mark.skipif(
    "DEB_PACKAGE" not in os.environ or os.geteuid() != 0,
    reason="`make deb-check` runs these, as root, beside the built package ($DEB_PACKAGE)",
)
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
USER, GROUP = "hailo-vision", "hailo"
VENV = Path("/usr/lib/hailo-vision")
ETC = Path("/etc/hailo/vision")
STATE = Path("/var/lib/hailo-vision")
# Where an install's traces would be; dpkg's and apt's own records, and the account files' backups,
# are theirs to keep.
WATCHED = ("/etc", "/usr", "/var/lib", "/opt", "/srv")
NOT_WATCHED = re.compile(r"^/var/lib/(dpkg|apt|ucf)/|^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-$")


def sh(*command: str, check: bool = True, cwd: Path | None = None) -> str:
    """The command's output; with `check`, an AssertionError with all it said when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, env=APT_ENV, cwd=cwd, timeout=300)
    if check and result.returncode != 0:
        said = result.stdout + result.stderr
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{said}")
    return result.stdout


def paths() -> set[str]:
    """Every path under WATCHED but those NOT_WATCHED, to compare before an install and after removal."""
    listed = sh("find", *WATCHED, "-xdev", check=False).splitlines()
    return {p for p in listed if not NOT_WATCHED.search(p + ("/" if Path(p).is_dir() else ""))}


def known(kind: str, name: str) -> bool:
    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def site_packages() -> Path:
    """The environment's site-packages (lib/pythonX.Y/site-packages, whatever Python built it)."""
    return next(VENV.glob("lib/python3.*/site-packages"))
