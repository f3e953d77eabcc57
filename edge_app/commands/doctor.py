"""``edge-app doctor``: check this machine for edge-app, one line per item."""
from __future__ import annotations

import argparse

from edge_app.commands.common import check_number, check_out_file
from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this machine: Python, OpenCV, cameras, CUDA, TensorRT, ...",
                       description="Check what edge-app needs here: Python, OpenCV (with GStreamer "
                       "on a Jetson), cameras and their modes, CUDA, TensorRT, torch, ONNX Runtime, "
                       "the subject stage's MediaPipe, the jtop service, the power mode and disk "
                       "space; with --source, that camera too, and whether its picture is turned. "
                       "Each line is OK, or says what to do. Exit status 1 when something fails.")
    p.add_argument("--json", metavar="FILE", help="also write the checks as JSON ('-' for stdout)")
    p.add_argument("--source", metavar="SOURCE", help="also check this camera or file (any "
                   "--source of capture and run): it delivers frames, and whether its picture "
                   "is turned, estimated from faces and open hands over many frames, with the "
                   "?rotate= to declare")
    p.add_argument("--seconds", type=float, default=20.0, help="--source: look for at most this "
                   "long (default 20; the check ends sooner once the answer is clear)")
    p.add_argument("--frames", type=int, default=300, help="--source: at most this many frames "
                   "(default 300)")
    p.add_argument("--width", type=int, help="--source: ask the camera for this width")
    p.add_argument("--height", type=int, help="--source: ask the camera for this height")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: the checks and the rooms they probe load when it runs (start-up time of --help)
    from edge_app.device.doctor import FAIL, check_source, run_checks

    if args.source is None and any(v is not None for v in (args.width, args.height)):
        raise UserError("--width and --height go with --source")
    if args.seconds <= 0 or args.frames < 1:
        raise UserError("--seconds must be above 0 and --frames at least 1")
    check_number("--seconds", args.seconds, 0.0, low_open=True, rule="above 0")
    check_out_file("--json", args.json)
    checks = run_checks()
    if args.source is not None:
        checks += check_source(args.source, args.seconds, args.frames,
                               width=args.width, height=args.height)
    for c in checks:
        print(c.line())
    failed = [c for c in checks if c.status == FAIL]
    print("\n{} check(s): {} failed, {} warning(s)".format(
        len(checks), len(failed), sum(c.status == "WARN" for c in checks)))
    if args.json:
        text = json_text([vars(c) for c in checks], indent=2)
        if args.json == "-":
            print(text)
        else:
            atomic_write_text(args.json, text + "\n")
    return 1 if failed else 0
