"""Make both demo models from scratch (`make demo-models`), measure them, and write their card.

Runs in .venv-demo (torch, transformers). Steps: train and export the tiny Qwen2-VL and the tiny CLIP
(each script also writes its golden test fixtures), evaluate both through the product's own ONNX
runners on freshly drawn held-out images, then write models/demo/README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

MODELS = Path(__file__).resolve().parent
sys.path.insert(0, str(MODELS))

import demo_card  # noqa: E402
import make_demo_clip  # noqa: E402
import make_demo_vlm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="barely train both (checks the pipeline)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    flags = ["--quick"] if args.quick else []
    for step in (make_demo_vlm.main, make_demo_clip.main):
        if step(flags) != 0:
            return 1
    print(f"trained and exported both models in {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr)
    for script in ("evaluate_demo_vlm.py", "evaluate_demo_clip.py"):
        subprocess.run([sys.executable, str(MODELS / script)], check=True)
    return demo_card.main()


if __name__ == "__main__":
    sys.exit(main())
