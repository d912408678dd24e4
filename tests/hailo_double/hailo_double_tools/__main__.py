"""`python -m hailo_double_tools hold ...`: hold the simulated device from another process (see holder.py)."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Any


def hold(args: argparse.Namespace) -> int:
    from hailo_platform import HailoRTException, VDevice
    from hailo_platform.pyhailort._pyhailort import HailoRTStatusException

    held: list[Any] = []
    try:
        params = VDevice.create_params()
        params.group_id = args.group
        vdevice = VDevice(params)
        held.append(vdevice)
        if args.vlm or args.llm:
            genai = importlib.import_module("hailo_platform.genai")
            model = genai.VLM if args.vlm else genai.LLM
            held.append(model(vdevice, args.vlm or args.llm))
        elif args.kv_cache:
            from hailo_double_tools.locks import KVCacheLease

            lease = KVCacheLease.try_acquire()
            if lease is None:
                print("FAILED the KV cache is in use by another model", flush=True)
                return 2
            held.append(lease)
    # Before 5.2.0 a model constructor's raw status exception is no HailoRTException (README).
    except (HailoRTException, HailoRTStatusException, TypeError) as exc:
        print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
        return 2
    print(f"READY {os.getpid()}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hailo_double_tools")
    commands = parser.add_subparsers(dest="command", required=True)
    hold_parser = commands.add_parser("hold", help="hold the simulated device until killed")
    hold_parser.add_argument("--group", default="UNIQUE", help="VDevice group id (default UNIQUE)")
    model = hold_parser.add_mutually_exclusive_group()
    model.add_argument("--vlm", help="also load a VLM from this double HEF")
    model.add_argument("--llm", help="also load an LLM from this double HEF")
    model.add_argument("--kv-cache", action="store_true", help="take the KV cache without loading a model")
    args = parser.parse_args(argv)
    return hold(args)


if __name__ == "__main__":
    sys.exit(main())
