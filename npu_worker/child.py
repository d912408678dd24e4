"""The command line every child process (API, NPU worker) is started with by the supervisor."""

from __future__ import annotations

import argparse
from pathlib import Path

from npu_worker.config import Config
from npu_worker.config_load import config_from_json
from npu_worker.logs import setup_logging


def child_setup(role: str, description: str | None, argv: list[str] | None) -> tuple[Config, Path]:
    """A child's command line (as the supervisor starts it): its resolved config and runtime directory,
    with logging set up for `role`."""
    parser = argparse.ArgumentParser(prog=f"hailo-vision-{role}", description=description)
    parser.add_argument("--config-json", required=True, help="resolved config written by the supervisor")
    parser.add_argument("--runtime-dir", required=True, help="private directory of the ipc sockets")
    args = parser.parse_args(argv)
    config = config_from_json(Path(args.config_json).read_text(encoding="utf-8"))
    setup_logging(role, config.logging.format, config.logging.level)
    return config, Path(args.runtime_dir)
