"""``edge-app capture``: collect labelled images from a camera into a dataset folder."""
from __future__ import annotations

import argparse
import logging

from edge_app.commands.common import add_source, add_task, check_number
from edge_app.errors import UserError
from edge_app.opencv import has_gui
from edge_app.sources import FrameReader, open_source
from edge_app.tasks.spec import load_task

log = logging.getLogger(__name__)

DESCRIPTION = """Collect labelled images into a dataset folder (one folder per class, or an
images/ folder plus labels.csv for keypoint tasks).

With a window: pick the class with 1-9 or Tab, press Space to save (hold it to burst, or
toggle burst with b); for keypoint tasks click on the image to place the selected point,
right-click removes one, Space/Enter saves, Backspace discards. q or Esc quits.

Headless (--headless): saves --count frames, one every --interval seconds, labelled --label,
or from the simulator's ground truth with a sim:// source.

First the camera check (up to --camera-check seconds) looks at faces and open hands to tell
whether the camera's picture is turned (a camera on its side or upside down); a turn found is
corrected for the whole session, so images and labels are saved upright, and the ?rotate= to
give next time is printed. In the window, saving waits for it; k skips it."""

EXAMPLES = """examples:
  edge-app capture --task thumbs --source usb:0 --out data/thumbs
  edge-app capture --task face --source csi://0 --out data/face
  edge-app capture --task thumbs --source usb:0 --headless --label thumbs_up --count 100 --interval 0.3 --out data/thumbs
  edge-app capture --task fingers --source sim://fingers --headless --count 50 --out /tmp/f"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capture", help="collect labelled images from a camera",
                       description=DESCRIPTION, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task(p)
    add_source(p)
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created if "
                   "missing; adding to an existing dataset of the same task is fine)")
    p.add_argument("--headless", action="store_true", help="no window: scripted capture")
    p.add_argument("--label", help="headless: the class to save every frame as (default with a "
                   "sim:// source: the simulator's ground truth)")
    p.add_argument("--count", type=int, default=100, help="headless: frames to save (default 100)")
    p.add_argument("--interval", type=float, default=None, help="seconds between saves (default "
                   "0.2 for cameras and streams, 0 for files and the unpaced simulator)")
    p.add_argument("--camera-check", type=float, default=10.0, metavar="SECONDS",
                   help="before saving, look this long at most for upright evidence (faces, open "
                   "hands) to tell whether the camera's picture is turned; a turn found is "
                   "corrected for the whole session, so images are saved upright (default 10; "
                   "0: off; skipped when the source has ?rotate=, and for files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-suggest", action="store_true", help="window: no label suggestions from "
                   "the hand's or face's landmarks (shown only; 'a' accepts one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # lazy: the capture rooms load when it runs (start-up time of edge-app capture --help)
    from edge_app.capture.session import CaptureSession, capture_finder

    task = load_task(args.task)
    if args.count is not None and args.count < 1:
        raise UserError("--count must be at least 1")
    check_number("--camera-check", args.camera_check, 0.0, rule="seconds: 0 (off) or more")
    check_number("--interval", args.interval, 0.0, rule="seconds, 0 or more")
    if args.label is not None and args.label not in task.classes:
        raise UserError("--label '{}' is not a class of task '{}' (classes: {})".format(
            args.label, task.name, ", ".join(task.classes) or "none: it is a keypoint task"))
    source = open_source(args.source, width=args.width, height=args.height, fps=args.fps)
    interval = args.interval if args.interval is not None else (0.2 if source.live else 0.0)
    if args.headless:
        return _headless(args, task, source, interval)
    from edge_app.capture.window import CaptureWindow  # lazy: only with a window

    if not has_gui():
        raise UserError("no window can be opened here (no display, or a headless OpenCV); use "
                        "--headless, or edge-app studio from a browser")
    session = CaptureSession(task, args.out, finder=capture_finder(task, source.has_truth))
    suggester = None if args.no_suggest else _suggester(task, source.has_truth)
    watch = None
    try:
        with FrameReader(source) as reader:
            log.info("source: %s", source.describe())
            watch = _camera_watch(source, args.camera_check)
            CaptureWindow(reader, session, interval=max(interval, 0.1), suggester=suggester,
                          watch=watch).run()
    finally:
        session.close()
        if suggester is not None:
            suggester.close()
        if watch is not None:
            watch.close()
    _report(session.writer.saved, args.out, session.counts)
    session.check()
    return 0


def _camera_watch(source, seconds: float):
    """The window's camera check (saving waits for it; 'k' skips it), or None with a note."""
    # lazy: as in run (start-up time)
    from edge_app.camera.check import CameraWatch
    from edge_app.capture.session import camera_check_skipped, camera_checker

    skipped = camera_check_skipped(source, seconds)
    if skipped:
        log.info("camera check: %s", skipped)
        return None
    return CameraWatch(source, rate=30.0 if source.has_truth else 3.0, seconds=seconds,
                       check=camera_checker(source))


def _suggester(task, has_truth: bool):
    """Landmark suggestions for the window, when a rule fits the task and a finder exists."""
    # lazy: the subject stage loads only for the window's suggestions (start-up time)
    from edge_app.subject.providers import make_finder
    from edge_app.subject.suggest import Suggester

    if task.subject == "none":
        return None
    if not has_truth:
        try:
            from edge_app.subject.mediapipe_finder import import_mediapipe  # lazy: as above

            import_mediapipe()
        except UserError as exc:
            log.info("note: no label suggestions (%s)", exc)
            return None
    suggester = Suggester(task, make_finder(task.subject, "auto", tracking=True))
    if not suggester.available:
        suggester.close()
        return None
    log.info("suggestions from the %s's landmarks: press 'a' to accept one", task.subject)
    return suggester


def _headless(args: argparse.Namespace, task, source, interval: float) -> int:
    # lazy: as in run (start-up time)
    from edge_app.capture.headless import run_headless
    from edge_app.capture.session import CaptureSession, camera_check_skipped, capture_finder, check_camera

    if args.label is None and not source.has_truth:
        raise UserError("--headless needs --label CLASS (or a sim:// source, which labels itself)"
                        if task.classes else
                        "keypoint capture needs clicks in the window; run without --headless, "
                        "or use a sim:// source")
    if args.label is not None:
        source.request_label(args.label)
    session = CaptureSession(task, args.out, finder=capture_finder(task, source.has_truth))
    try:
        with FrameReader(source) as reader:
            log.info("source: %s", source.describe())
            skipped = camera_check_skipped(source, args.camera_check)
            if skipped:
                log.info("camera check: %s", skipped)
            else:
                check_camera(reader, args.camera_check)
            stats = run_headless(reader, session, args.count, interval, args.label,
                                 progress=not args.no_progress)
    finally:
        session.close()
    # What was saved is the command's answer (printed); the source and notes are status (logged).
    print(f"saved {stats.saved} image(s) to {args.out} in {stats.seconds:.1f} s ({stats.rate:.1f} images/s)")
    if stats.ended_early:
        log.info("note: the source ended after %d frame(s), before --count %d",
                 stats.frames_seen, args.count)
    _report(None, args.out, session.counts)
    return 0


def _report(saved, out: str, counts) -> None:
    if saved is not None:
        print(f"saved {saved} image(s) to {out}")
    print("dataset now holds: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
