"""``edge-app run``: stream a source through one or more models with overlays."""
from __future__ import annotations

import argparse
import signal
import threading

from edge_app.commands.common import add_source
from edge_app.subject import provider_names

HELP = """Run models live on a camera, a file or the simulator: staged and timed (grab,
subject, preprocess, infer, decode, smooth, annotate, output), with overlays. Models trained on
the subject's crop (the hand or face; see edge-app train --input) get the subject stage: it
finds the subject, tracks it between frames, and says "no hand" rather than guessing when
there is none. Outputs never slow the
loop: the window, the recording and the JSON lines each run behind a queue that drops rather
than stalls. Ctrl-C or SIGTERM (systemctl stop) shuts down cleanly and closes the recording.

--model resolution: a bundle folder (from edge-app train; runs its model.onnx, or the
checkpoint with --backend torch), then an .onnx file exported by edge-app export. Repeat
--model to run several models on one stream; their overlays stack.

--backend auto picks TensorRT where it is installed (the engine is built for this device and
cached on first run), else ONNX Runtime (CUDA provider if present, else the CPU), else PyTorch,
and prints which and why."""

EXAMPLES = """examples:
  edge-app run --model runs/thumbs --source usb:0
  edge-app run --model runs/thumbs --source sim://thumbs --headless --frames 300 --record out.mp4 --json-out out.jsonl
  edge-app run --model runs/face --model runs/emotions --source video.mp4 --headless --record both.mp4"""


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
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.add_argument("--subject-provider", default="auto",
                   choices=provider_names(),
                   help="who finds the hand or face for crop models: auto (default: the "
                   "simulator's truth on sim:// sources, else MediaPipe), or one of them")
    p.add_argument("--no-tracking", action="store_true",
                   help="search every frame afresh instead of tracking the subject")
    p.add_argument("--smooth", type=int, default=1, metavar="N",
                   help="average the last N results so overlays don't flicker (default 1: off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_app.backends import choose_backend
    from edge_app.cv import has_gui
    from edge_app.errors import UserError
    from edge_app.model_info import load_model_info
    from edge_app.runtime.loop import Runner, check_models, run_loop
    from edge_app.runtime.sinks import JsonLinesSink, VideoSink
    from edge_app.sources import FrameReader, open_source

    runners = []
    for spec in args.model:
        info = load_model_info(spec)
        backend, why = choose_backend(args.backend, info, args.threads)
        backend.warmup(info)
        print("model {}: {} on {} ({})".format(info.name, info.task.name, backend.describe(), why))
        runners.append(Runner(info, backend))
    sizes = check_models(runners)
    kinds = [r.info.subject for r in runners if r.info.subject]
    subjects = None
    if kinds:
        from edge_app.subject.stage import SubjectStage

        subjects = SubjectStage(kinds, args.subject_provider, tracking=not args.no_tracking)
        print("subject stage: {} ({}, {})".format(", ".join(sorted(set(kinds))), args.subject_provider,
                                                  "tracking" if not args.no_tracking else "every frame"))
    if not args.headless and not has_gui():
        raise UserError("no window can be opened here (no display, or a headless OpenCV); add "
                        "--headless (with --record or --json-out)")
    source = open_source(args.source, width=args.width, height=args.height, fps=args.fps)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    from typing import Any, List

    sinks: List[Any] = []
    window = None
    try:
        with FrameReader(source) as reader:
            mode = source.describe().replace(args.source, args.source.split("?")[0])
            print("source: " + mode)
            if args.record:
                sinks.append(VideoSink(args.record, fps=source.info.fps or 30.0))
            if args.json_out:
                sinks.append(JsonLinesSink(args.json_out))
            if args.serve:
                from edge_app.runtime.serve import ServeSink

                server = ServeSink(args.serve)
                sinks.append(server)
                print("serving http://{}:{}/ (stream: /stream, results: /results)".format(
                    server.host, server.port))
            if not args.headless:
                from edge_app.runtime.window import Window

                window = Window("edge-app: " + ", ".join(r.info.name for r in runners))
            status = "{} | {} | input {} | {}".format(
                ", ".join(r.backend.describe() for r in runners),
                ", ".join(sorted({r.backend.precision for r in runners})), ", ".join(sizes), mode)
            stats = run_loop(reader, runners, sinks, window, args.frames, args.smooth, status, stop,
                             subjects)
    finally:
        if subjects is not None:
            subjects.close()
        for sink in sinks:
            sink.close()
        if window is not None:
            window.close()
        for r in runners:
            r.backend.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    _report(stats, sinks)
    return 0


def _report(stats, sinks) -> None:
    print("{} frames in {:.1f} s: {:.1f} FPS ({})".format(stats.frames, stats.seconds, stats.fps,
                                                          stats.stopped_by))
    print("median ms per stage: " + ", ".join("{} {:.2f}".format(k, v) for k, v in stats.stages_ms.items()))
    for sink in sinks:
        extra = "" if not sink.dropped else ", {} dropped (output slower than the loop)".format(sink.dropped)
        print("{}: {} frame(s) written{}".format(sink.name, sink.written, extra))
        if sink.error is not None:
            print("{}: stopped writing: {}".format(sink.name, sink.error))
