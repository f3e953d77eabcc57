"""``edge-app run``: stream a source through one or more models with overlays."""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any, List, Sequence

from edge_app.commands.common import add_source, check_number, check_out_file
from edge_app.detect.layouts import LAYOUTS
from edge_app.detect.track import Tracker
from edge_app.errors import UserError, did_you_mean
from edge_app.opencv import has_gui
from edge_app.runtime.swap import BundleSwap, is_link, runner_maker, target
from edge_app.runtime.window import Window
from edge_app.sources import FrameReader, open_source
from edge_app.subject import provider_names

if TYPE_CHECKING:
    from edge_app.runtime.loop import Sink

log = logging.getLogger(__name__)

HELP = """Run models live on a camera, a file or the simulator: staged and timed (grab,
subject, preprocess, infer, decode, smooth, annotate, output), with overlays. Models trained on
the subject's crop (the hand or face; see edge-app train --input) get the subject stage: it
finds the subject, tracks it between frames, and says "no hand" rather than guessing when
there is none. Outputs never slow the
loop: the window, the recording and the JSON lines each run behind a queue that drops rather
than stalls. Ctrl-C or SIGTERM (systemctl stop) shuts down cleanly and closes the recording.

--model resolution: a bundle folder (from edge-app train; runs its model.onnx, or the
checkpoint with --backend torch), then an .onnx file: exported by edge-app export, or an object
detector (SSD-Mobilenet from jetson-inference's pytorch-ssd, YOLOv5/v8/11 from Ultralytics,
with or without NMS inside; the layout is recognised from its outputs), or the built-in
detectors hands and faces (MediaPipe; nothing to download). Repeat --model to run several
models on one stream; their overlays stack.

--collect DIR keeps the frames each model finds hard (unsure, flipping answers, jumping
points, a lost subject, and a few at random to see drift), rate-limited and capped in size,
in DIR/<model>/ as JPEGs plus collected.jsonl; review them in the studio (edge-app studio
--collected DIR), retrain, and the studio points a `current` link at the better model.
--model given as such a link (e.g. runs/current) is watched: a new bundle it points to is
exported and loaded in the background and swapped in between two frames.

--backend auto picks TensorRT where it is installed (the engine is built for this device and
cached on first run), else ONNX Runtime (CUDA provider if present, else the CPU), else PyTorch,
and prints which and why."""

EXAMPLES = """examples:
  edge-app run --model runs/thumbs --source usb:0
  edge-app run --model faces --source usb:0 --track
  edge-app run --model ssd-mobilenet.onnx --labels labels.txt --source csi://0 --classes person
  edge-app run --model yolov8n.onnx --source video.mp4 --headless --json-out boxes.jsonl
  edge-app run --model runs/thumbs --source sim://thumbs --headless --frames 300 --record out.mp4 --json-out out.jsonl
  edge-app run --model runs/face --model runs/emotions --source video.mp4 --headless --record both.mp4
  edge-app run --model runs/studio-thumbs/current --source usb:0 --headless --collect collected/"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run models live with overlays", description=HELP,
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="bundle folder or .onnx file (repeat for several models)")
    add_source(p)
    p.add_argument("--backend", default="auto", help="auto (default), trt, onnx or torch")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: all cores)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--record", metavar="FILE.mp4", help="record the annotated stream")
    p.add_argument("--json-out", metavar="FILE", help="one JSON line per frame: results, timings "
                   "(and the simulator's ground truth)")
    p.add_argument("--serve", metavar="HOST:PORT", help="MJPEG stream of the annotated frames at "
                   "/stream and the latest results at /results (binds to 127.0.0.1 unless a host "
                   "is given; another host prints a warning)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="with --serve: a DNS name the stream may be opened by, besides localhost "
                   "and this machine's own names and addresses (repeatable; others get 421, "
                   "against DNS rebinding)")
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.add_argument("--subject-provider", default="auto",
                   choices=provider_names(),
                   help="who finds the hand or face for crop models: auto (default: the "
                   "simulator's truth on sim:// sources, else MediaPipe), or one of them")
    p.add_argument("--no-tracking", action="store_true",
                   help="search every frame afresh instead of tracking the subject")
    p.add_argument("--denoise", default="auto", choices=("auto", "on", "off"),
                   help="whether the hand or face search sees frames lightly smoothed: auto "
                   "(default: when the camera reads noisy, as dim or cheap sensors do; checked "
                   "every 15 frames), on, or off. Models still see the frame as it is")
    p.add_argument("--track", action="store_true",
                   help="detection models: give boxes ids that persist across frames (norfair), "
                   "so labels and counts don't flicker")
    p.add_argument("--smooth", type=int, default=1, metavar="N",
                   help="average the last N results so overlays don't flicker (default 1: off)")
    g = p.add_argument_group("collecting hard examples")
    g.add_argument("--collect", metavar="DIR", help="keep the frames each model is unsure about "
                   "(or loses the subject on, or flips or jumps on, plus a few at random) in "
                   "DIR/<model>/, for review in the studio")
    g.add_argument("--collect-max-mb", type=float, default=500.0, metavar="MB",
                   help="size cap of each model's folder; the oldest frames go first (default 500)")
    g.add_argument("--collect-every", type=float, default=0.5, metavar="S",
                   help="keep at most one frame per model every S seconds (default 0.5)")
    g.add_argument("--collect-below", type=float, default=0.6, metavar="P",
                   help="a top class score below P counts as unsure (default 0.6)")
    add_detection(p)
    p.set_defaults(func=run)


def add_detection(p: argparse.ArgumentParser) -> None:
    """Options of detection models (shared with edge-app bench)."""
    names = list(LAYOUTS)
    g = p.add_argument_group("detection models")
    g.add_argument("--labels", metavar="FILE", help="class names, one per line (jetson-inference's "
                   "labels.txt, BACKGROUND first for SSD); default: the model's metadata, else numbers")
    g.add_argument("--layout", help="force the output layout instead of recognising it: "
                   "{} or {}".format(", ".join(names[:-1]), names[-1]))
    g.add_argument("--conf", type=float, default=0.25, help="minimum score (default 0.25)")
    g.add_argument("--iou", type=float, default=0.45,
                   help="boxes of a class overlapping more than this are merged (default 0.45)")
    g.add_argument("--classes", metavar="A,B", type=lambda v: [c.strip() for c in v.split(",") if c.strip()],
                   help="keep only these classes (names or ids)")
    g.add_argument("--max-det", type=int, default=100, help="at most this many boxes a frame")


def check_detection(args: argparse.Namespace, models: Sequence[str]) -> None:
    """The detection options, before any model loads: --labels and --layout only where a model
    is a detector's .onnx (the built-in detectors and bundles have their own classes), a known
    layout, a readable labels file, and scores and counts in range."""
    given = [f"--{name}" for name in ("labels", "layout") if getattr(args, name)]
    if given and not any(str(m).lower().endswith(".onnx") for m in models):
        raise UserError("{} {} only to object detectors given as .onnx files (SSD, YOLO); {} has its "
                        "own classes: leave {} out".format(" and ".join(given), "apply" if len(given) > 1 else "applies",
                                                           ", ".join(models), "them" if len(given) > 1 else "it"))
    if args.layout and args.layout not in LAYOUTS:
        raise UserError("--layout {}: not a layout; choose from {}{}".format(
            args.layout, ", ".join(LAYOUTS), did_you_mean(args.layout, LAYOUTS)))
    if args.labels:
        from pathlib import Path

        from edge_app.detect.detector import read_labels  # lazy: start-up time of run/bench --help

        read_labels(Path(args.labels))
    check_number("--conf", args.conf, 0.0, 1.0, rule="between 0 and 1")
    check_number("--iou", args.iou, 0.0, 1.0, rule="between 0 and 1")
    check_number("--max-det", args.max_det, 1, rule="at least 1")


def check_options(args: argparse.Namespace) -> None:
    """Every option's value, before the models load: one line for the first mistake."""
    check_detection(args, args.model)
    check_number("--collect-max-mb", args.collect_max_mb, 0.0, low_open=True, rule="a size in MB above 0")
    check_number("--collect-every", args.collect_every, 0.0, rule="seconds, 0 or more")
    check_number("--collect-below", args.collect_below, 0.0, 1.0, low_open=True,
                 rule="a score above 0 and at most 1")
    check_number("--smooth", args.smooth, 1, rule="at least 1 (1: off)")
    check_number("--frames", args.frames, 1, rule="at least 1")
    check_number("--threads", args.threads, 1, rule="at least 1")
    check_out_file("--json-out", args.json_out, expand=True)
    if args.serve:
        from edge_app.runtime.serve import parse_address  # lazy: the HTTP server, only with --serve

        parse_address(args.serve)


def detect_options(args: argparse.Namespace) -> object:
    from edge_app.detect.loading import DetectOptions  # lazy: start-up time of run/bench --help

    return DetectOptions(args.labels, args.layout, args.conf, args.iou, args.classes, args.max_det)


def run(args: argparse.Namespace) -> int:
    # lazy: the live loop and its sinks load when it runs (start-up time of edge-app run --help)
    from edge_app.runtime.loop import Runner, check_models, run_loop
    from edge_app.runtime.sinks import JsonLinesSink, VideoSink

    check_options(args)
    if args.record:   # before the models load: a wrong path fails in a second, not after a run
        from edge_app.runtime.recording import check_record_path  # lazy: only with --record

        check_record_path(args.record)
    with contextlib.ExitStack() as held:   # closes all it holds, last opened first, whatever fails
        runners = []
        for spec in args.model:
            runners.append(_load_runner(args, spec, Runner))
            held.callback(runners[-1].backend.close)
        sizes = check_models(runners)
        source = open_source(args.source, width=args.width, height=args.height, fps=args.fps)
        kinds = [r.info.subject for r in runners if r.info.subject]
        subjects = None
        if kinds:
            # lazy: the subject stage, only for models that need one
            from edge_app.subject.stage import SubjectStage, stage_provider

            provider = stage_provider(args.subject_provider,
                                      [r.info.plan.feature_schema for r in runners])
            subjects = SubjectStage(kinds, provider, tracking=not args.no_tracking,
                                    denoise=args.denoise, look=source.look)
            held.callback(subjects.close)
            log.info("subject stage: %s (%s, %s, denoise %s, camera look %s)",
                     ", ".join(sorted(set(kinds))), provider,
                     "tracking" if not args.no_tracking else "every frame", args.denoise,
                     source.look or "learned")
        if not args.headless and not has_gui():
            raise UserError("no window can be opened here (no display, or a headless OpenCV); add "
                            "--headless (with --record or --json-out)")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            held.callback(signal.signal, sig, signal.signal(sig, lambda *_: stop.set()))
        sinks: List[Sink] = []
        collector = _collector(args, runners)
        if collector is not None:
            held.callback(collector.close)
        swaps = _swaps(args, runners, Runner)
        for swap in swaps:
            held.callback(_close_swap, swap)
        reader = held.enter_context(FrameReader(source))
        mode = source.describe().replace(args.source, args.source.split("?")[0])
        log.info("source: %s", mode)
        if args.record:
            sinks.append(held.enter_context(contextlib.closing(
                VideoSink(args.record, fps=source.info.fps or 30.0))))
        if args.json_out:
            sinks.append(held.enter_context(contextlib.closing(JsonLinesSink(args.json_out))))
        if args.serve:
            from edge_app.runtime.serve import ServeSink  # lazy: the HTTP server, only with --serve

            server = held.enter_context(contextlib.closing(
                ServeSink(args.serve, allow_hosts=args.allow_host)))
            sinks.append(server)
            log.info("serving http://%s:%s/ (stream: /stream, results: /results)",
                     server.host, server.port)
        window = None
        if not args.headless:
            window = held.enter_context(contextlib.closing(
                Window("edge-app: " + ", ".join(r.info.name for r in runners))))
        status = "{} | {} | input {} | {}".format(
            ", ".join(r.backend.describe() for r in runners),
            ", ".join(sorted({r.backend.precision for r in runners})), ", ".join(sizes), mode)
        stats = run_loop(reader, runners, sinks, window, args.frames, args.smooth, status, stop,
                         subjects, collector, swaps)
    _report(stats, sinks)
    if collector is not None:
        _report_collect(collector, args.collect)
    failure = _failure(stats, sinks, args.source)
    if failure:
        raise UserError(failure)
    return 0


def _close_swap(swap: Any) -> None:
    """Stop a hot-swap watcher, and close the model it was holding ready, if any."""
    left = swap.close()
    if left is not None:
        left.backend.close()


def _load_runner(args: argparse.Namespace, spec: str, runner_class):
    """Load one ``--model``: its info and backend, warmed up, as a Runner."""
    from edge_app.model.info import load_model_info  # lazy: as in run (start-up time)

    info = load_model_info(spec, detect_options(args))
    backend, why = _backend(args, info)
    backend.warmup(info)
    log.info("model %s: %s on %s (%s)", info.name, _what(info), backend.describe(), why)
    return runner_class(info, backend, tracker=_tracker(args, info))


def _collector(args: argparse.Namespace, runners):
    """The hard-example collector for ``--collect`` (None without it)."""
    if not args.collect:
        return None
    from edge_app.runtime.collect import Collector, CollectPolicy  # lazy: only with --collect

    policy = CollectPolicy(min_confidence=args.collect_below, min_interval=args.collect_every,
                           max_bytes=int(args.collect_max_mb * 1024 * 1024))
    collector = Collector(args.collect, policy)
    for r in runners:
        folder = collector.add_model(r.info.name, r.info)
        log.info("collecting hard frames of %s in %s", r.info.name, collector.root / folder)
    return collector


def _swaps(args: argparse.Namespace, runners, runner_class):
    """A watcher for each ``--model`` that is a link to a bundle (e.g. runs/current)."""
    from pathlib import Path

    swaps = []
    for i, spec in enumerate(args.model):
        if not is_link(spec):
            continue
        name = runners[i].info.name
        runners[i].version = target(Path(spec)).name
        make = runner_maker(name, lambda bundle: _load_runner(args, str(bundle), runner_class))
        swaps.append(BundleSwap(Path(spec).expanduser(), i, make, running=runners[i]).start())
        log.info("watching %s (now %s): a new bundle there is swapped in while running", spec,
                 runners[i].version)
    return swaps


def _report_collect(collector, root: str) -> None:
    stats = collector.stats()
    for folder, kept in stats.kept.items():
        reasons = ", ".join(f"{k} {v}" for k, v in kept.items() if v) or "none"
        print(f"collect {folder}: {sum(kept.values())} frame(s) kept ({reasons}); {stats.limited.get(folder, 0)} more hard ones skipped by the rate limit")
    extra = "" if not stats.dropped else f", {stats.dropped} dropped (disk slower than the loop)"
    print(f"collect: {stats.written} frame(s) written to {root}{extra}")
    if stats.error is not None:
        print(f"collect: stopped writing: {stats.error}")


def _failure(stats, sinks, source: str) -> str:
    """Why the run produced less than it was asked for ("" when it did not): no frame at all,
    or an output that stopped writing. The command then exits non-zero."""
    if stats.frames == 0:
        return (f"{source}: no frame was read, so nothing was produced (unreadable images, an empty "
                "video, count=0?); fix the source or point --source at another")
    broken = [s for s in sinks if s.error is not None]
    if broken:
        return f"{broken[0].name}: {broken[0].error}"
    return ""


def _backend(args: argparse.Namespace, info) -> tuple:
    """The model's backend, loaded, and why; the built-in detectors' own backend takes the
    subject-provider and tracking settings."""
    # lazy: the backends load with a model (start-up time of edge-app run --help)
    from edge_app.backends.registry import BackendOptions, choose_backend

    options = BackendOptions(subject_provider=args.subject_provider, tracking=not args.no_tracking)
    return choose_backend(args.backend, info, args.threads, options)


def _what(info) -> str:
    if info.detector is None:
        return info.task.name
    return f"{info.detector.layout.name} detector, {len(info.labels)} classes"


def _tracker(args: argparse.Namespace, info):
    if not args.track or info.detector is None:
        return None

    return Tracker()


def _report(stats, sinks) -> None:
    print(f"{stats.frames} frames in {stats.seconds:.1f} s: {stats.fps:.1f} FPS ({stats.stopped_by})")
    print("median ms per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in stats.stages_ms.items()))
    for sink in sinks:
        extra = "" if not sink.dropped else f", {sink.dropped} dropped (output slower than the loop)"
        print(f"{sink.name}: {sink.written} frame(s) written{extra}")
        if sink.error is not None:
            print(f"{sink.name}: stopped writing: {sink.error}")
