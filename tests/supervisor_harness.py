"""Runs the real Supervisor with tests/fake_child.py as its API and worker (test-only).

Configuration comes the usual way (load_config: $HAILO_VISION_CONFIG and HAILO_VISION_* overrides);
--api and --worker carry extra fake_child.py flags for each role.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from npu_worker.config_load import load_config
from npu_worker.logs import setup_logging
from npu_worker.states import Role
from supervisor.supervise import Supervisor

FAKE_CHILD = Path(__file__).resolve().parent / "fake_child.py"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", required=True)
    parser.add_argument("--api", default="", help="fake_child.py flags for the API role")
    parser.add_argument("--worker", default="", help="fake_child.py flags for the worker role")
    parser.add_argument("--api-grace", type=float, default=5.0)
    parser.add_argument("--worker-grace", type=float, default=5.0)
    args = parser.parse_args()
    config = load_config()
    setup_logging("supervisor", config.logging.format, config.logging.level)
    commands = {
        role: [sys.executable, str(FAKE_CHILD), "--role", role, "--events", args.events, *shlex.split(flags)]
        for role, flags in ((Role.API, args.api), (Role.WORKER, args.worker))
    }
    return Supervisor(config, commands, args.api_grace, args.worker_grace).run()


if __name__ == "__main__":
    sys.exit(main())
