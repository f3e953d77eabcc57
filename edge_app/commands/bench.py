"""``edge-app bench``: inference latency and throughput per backend, precision and batch;
the end-to-end loop per stage with a source; telemetry; JSON, PNG and comparisons."""
from __future__ import annotations

import argparse
import logging
import time
from typing import Any, Dict, List

from edge_app.bench import report, telemetry
from edge_app.commands.common import check_number, check_out_file
from edge_app.commands.run import add_detection, check_detection, detect_options
from edge_app.errors import UserError
from edge_app.sources import FrameReader, open_source

log = logging.getLogger(__name__)

HELP = """How fast is this model here, and where does the time go? For each backend, precision
and batch size: inference-only latency (mean, trimmed mean, p50/p95/p99; each call waits for
the device), throughput, and with --source the end-to-end loop FPS with each stage's ms and
share. Telemetry is sampled during each run: on a Jetson through jetson-stats (power per rail
and total, so FPS per watt; GPU/CPU load; temperatures; nvpmodel and jetson_clocks), on a
desktop GPU through nvidia-smi, elsewhere CPU load and memory. Warns when figures can't be
trusted (jetson_clocks off, a power mode below the maximum, throttling, a camera slower than
asked, runs that disagree)."""

EXAMPLES = """examples:
  edge-app bench --model runs/thumbs
  edge-app bench --model runs/thumbs --backends trt,onnx --precision fp16,fp32,int8 --batch 1,4
  edge-app bench --model runs/thumbs --source usb:0 --fps 30 --json orin.json --png orin.png
  edge-app bench --model yolov8n.onnx --labels coco.txt --source usb:0
  edge-app bench --model faces --source sim://crowd
  edge-app bench --compare xavier.json orin.json"""


def _list(text: str) -> List[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark a model: latency, FPS, stages, power",
                       description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", metavar="MODEL", help="bundle folder, .onnx file (edge-app's or a "
                   "detector's), or hands / faces (the built-in detectors, on MediaPipe)")
    p.add_argument("--backends", default="all", help="all (default: those installed) or a list: trt,onnx,torch")
    p.add_argument("--precision", default="auto",
                   help="auto (each backend's own: trt fp16, others fp32) or a list: fp16,fp32,int8")
    p.add_argument("--batch", default="1", help="batch sizes, e.g. 1,4 (default 1)")
    p.add_argument("--source", default="none",
                   help="none (default: inference only), or a source for the end-to-end loop: "
                   "usb:0, csi:0, sim://thumbs, a video file")
    p.add_argument("--fps", type=float, help="camera frame rate to ask for (and to check)")
    p.add_argument("--width", type=int, help="camera width to ask for")
    p.add_argument("--height", type=int, help="camera height to ask for")
    p.add_argument("--frames", type=int, default=200, help="timed frames per run (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    p.add_argument("--repeat", type=int, default=1, help="runs per combination; reports their spread")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: all cores)")
    p.add_argument("--json", metavar="FILE", help="write everything as JSON")
    p.add_argument("--png", metavar="FILE", help="write a latency and stage chart")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print two saved runs side by side (B relative to A) and exit")
    add_detection(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.compare:
        print(report.compare(report.load(args.compare[0]), report.load(args.compare[1])))
        return 0
    if not args.model:
        raise UserError("bench needs --model BUNDLE (or --compare A.json B.json)")
    check_detection(args, [args.model])   # before the minutes a benchmark takes
    check_number("--threads", args.threads, 1, rule="at least 1")
    check_out_file("--json", args.json)
    check_out_file("--png", args.png)
    result = benchmark(args)
    print(report.table(result))
    for note in result["notes"]:
        log.info("note: %s", note)
    for warning in result["warnings"]:
        log.warning("%s", warning)
    if args.json:
        report.write_json(args.json, result)
        log.info("json: %s", args.json)
    if args.png:
        note = report.chart(args.png, result)
        log.info("%s", note or "chart: " + args.png)
    return 0


def _settings(args: argparse.Namespace) -> Any:
    # lazy: the backends and the benchmark load when it runs, not for edge-app bench --help
    from edge_app.backends.registry import BACKENDS
    from edge_app.bench.measure import Settings

    # "all": the general ones; a model with a backend of its own is measured on that one.
    backends = [n for n, e in BACKENDS.items() if e.general] if args.backends == "all" else _list(args.backends)
    for b in backends:
        if b not in BACKENDS:
            raise UserError("--backends: unknown '{}'; choose from {}".format(b, ", ".join(BACKENDS)))
    precisions = ["auto"] if args.precision == "auto" else _list(args.precision)
    for p in precisions:
        if p not in ("auto", "fp16", "fp32", "int8"):
            raise UserError(f"--precision: unknown '{p}'; choose from fp16, fp32, int8")
    try:
        batches = [int(v) for v in _list(args.batch)]
    except ValueError:
        raise UserError(f"--batch: expected numbers like 1,4, got '{args.batch}'")
    if not batches or min(batches) < 1 or args.frames < 1 or args.repeat < 1 or args.warmup < 0:
        raise UserError("--batch, --frames and --repeat must be at least 1 (--warmup at least 0)")
    return Settings(backends, precisions, batches, args.frames, args.warmup, args.repeat,
                    args.threads, None if args.source == "none" else args.source)


def benchmark(args: argparse.Namespace) -> Dict[str, Any]:
    """Every combination, with telemetry; the result as one JSON-ready dict."""
    # lazy: as in _settings (start-up time of edge-app bench --help)
    from edge_app.backends.registry import BACKENDS, backends_for
    from edge_app.bench import environment
    from edge_app.bench.measure import measure
    from edge_app.model.info import load_model_info

    s = _settings(args)
    info = load_model_info(args.model, detect_options(args))
    if info.runs_on:
        s.backends = backends_for(info)
    sources, notes = telemetry.open_sources()
    sampler = telemetry.Sampler(sources)
    loop_fn = _loop_runner(args, s) if s.source else None
    rows = []
    try:
        state: Dict[str, Any] = {}
        for src in sources:
            state.update(src.state())
        for backend in s.backends:
            own = BACKENDS[backend].precisions[0]
            precisions = [own] if s.precisions == ["auto"] else s.precisions
            for precision in precisions:
                for batch in s.batches:
                    log.info("measuring %s %s batch %s ...", backend, precision, batch)
                    rows.append(measure(info, backend, precision, batch, s, sampler, loop_fn))
    finally:
        for src in sources:
            src.close()
    result: Dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": environment.device(),
        "versions": environment.versions(), "model": environment.model_facts(info),
        "settings": dict(vars(s), camera_fps_asked=args.fps), "state": state,
        "telemetry_sources": [src.name for src in sources], "notes": notes,
        "rows": [dict(vars(r), key=r.key) for r in rows]}
    result["warnings"] = report.warnings_for(result)
    return result


def _loop_runner(args: argparse.Namespace, s: Any) -> Any:
    """Runs the live loop on the source with an already loaded backend."""
    def loop(info: Any, backend: Any) -> Dict[str, Any]:
        from edge_app.runtime.loop import Runner, run_loop  # lazy: as in _settings

        source = open_source(s.source, width=args.width, height=args.height, fps=args.fps)
        with FrameReader(source) as reader:
            stats = run_loop(reader, [Runner(info, backend)], max_frames=s.frames)
            fps = source.info.fps
        return {"fps": round(stats.fps, 2), "frames": stats.frames, "source": s.source,
                "camera_fps": fps or None,
                "stages_ms": {k: round(v, 3) for k, v in stats.stages_ms.items()}}
    return loop
