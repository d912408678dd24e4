"""`hailo-vision serve [--config FILE]`: run the service (supervisor, API, NPU worker) in the foreground.

Exit codes: 0 after a requested stop (SIGTERM/SIGINT), 1 when a child flaps or the runtime directory
or control socket cannot be set up, 2 for a usage or configuration error (the message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import zmq

from npu_worker.config import ConfigError
from npu_worker.config_load import load_config
from npu_worker.logs import setup_logging
from supervisor.runtime import RuntimeDirError
from supervisor.supervise import Supervisor


def serve(config_file: str | None) -> int:
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        print(f"hailo-vision: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging("supervisor", config.logging.format, config.logging.level)
    try:
        return Supervisor(config).run()
    except (RuntimeDirError, zmq.ZMQError) as exc:
        print(f"hailo-vision: cannot start: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hailo-vision", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the service in the foreground")
    serve_parser.add_argument("--config", metavar="FILE", help="config file (default: the lookup order)")
    doctor_parser = commands.add_parser("doctor", help="check the Hailo device, HailoRT and the models")
    doctor_parser.add_argument("--config", metavar="FILE", help="config file (default: the lookup order)")
    doctor_parser.add_argument("--device", metavar="NODE", help="device node (default: /dev/hailo0)")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from supervisor import doctor

        return doctor.run(args.config, args.device)
    return serve(args.config)


if __name__ == "__main__":
    sys.exit(main())
