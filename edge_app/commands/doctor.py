"""``edge-app doctor``: check this machine for edge-app, one line per item."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this machine: Python, OpenCV, cameras, CUDA, TensorRT, ...",
                       description="Check what edge-app needs here: Python, OpenCV (with GStreamer "
                       "on a Jetson), cameras and their modes, CUDA, TensorRT, torch, ONNX Runtime, "
                       "the subject stage's MediaPipe, the jtop service, the power mode and disk "
                       "space. Each line is OK, or says what to do. Exit status 1 when something "
                       "fails.")
    p.add_argument("--json", metavar="FILE", help="also write the checks as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_app.doctor import FAIL, run_checks

    checks = run_checks()
    for c in checks:
        print(c.line())
    failed = [c for c in checks if c.status == FAIL]
    print("\n{} check(s): {} failed, {} warning(s)".format(
        len(checks), len(failed), sum(c.status == "WARN" for c in checks)))
    if args.json:
        text = json.dumps([vars(c) for c in checks], indent=2)
        if args.json == "-":
            print(text)
        else:
            from edge_app.dataset.atomic import atomic_write_text

            atomic_write_text(args.json, text + "\n")
    return 1 if failed else 0
