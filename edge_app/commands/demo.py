"""``edge-app demo``: the whole product on the simulated camera, in one folder, in minutes.

For each task: capture a labelled dataset -> train (fast mode, the offline EfficientNet-Lite0
backbone) -> export ONNX with parity -> evaluate on freshly rendered frames -> run the live loop
with overlays into a video -> benchmark; then a short report. No camera, GPU, display or
network needed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from edge_app.cli import main
from edge_app.commands.common import check_out_folder
from edge_app.dataset.atomic import atomic_write_text, json_text
from edge_app.errors import UserError

DEMO_TASKS = ("thumbs", "emotions", "fingers", "face")
SIM = "sim://{task}?seed={seed}&width={w}&height={h}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on the simulated camera, end to end",
                       description=__doc__.split("\n", 1)[1].strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="thumbs", choices=DEMO_TASKS + ("all",),
                   help="which course task (default thumbs; all: the four)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--captures", type=int, default=160, help="training captures (default 160)")
    p.add_argument("--frames", type=int, default=300, help="live-loop frames (default 300)")
    p.set_defaults(func=run)


def _quiet(log: Path, fn: Callable[[], Any]) -> Any:
    """Run a step with its chatter in the step's log file, not the terminal. Redirecting (not
    raising log levels) also catches third-party prints and warnings and tqdm, and edge-app's
    log handler writes to whatever sys.stdout/stderr is at the time."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            return fn()
    finally:
        log.write_text(buf.getvalue(), encoding="utf-8")


def _cli(args: List[str]) -> None:
    import logging

    verbose = ["--verbose"] if logging.getLogger("edge_app").isEnabledFor(logging.DEBUG) else []
    if main(verbose + args) != 0:   # each main() sets the log levels again: keep -v's
        raise UserError("edge-app {} failed".format(" ".join(args[:1])))


def demo_task(task: str, out: Path, captures: int, frames: int) -> Dict[str, Any]:
    """Every stage for one task; returns the task's part of the report."""
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    data, fresh, bundle = out / "dataset", out / "fresh_frames", out / "bundle"
    timings: Dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        # The demo's own report is printed: a step's name, then "done in" on the same line
        # when it ends, which a log record (one whole line) cannot do.
        start = time.monotonic()
        print(f"  {name:<9}", end="", flush=True)
        value = _quiet(logs / (name + ".log"), fn)
        timings[name] = round(time.monotonic() - start, 1)
        print(f"done in {timings[name]:.1f} s", flush=True)
        return value

    import shutil

    for folder in (data, fresh):   # a rerun starts from fresh captures, not appended ones
        if folder.exists():
            shutil.rmtree(folder)
    def capture() -> None:
        for folder, count, seed in ((data, captures, 1), (fresh, 100, 99)):
            _cli(["capture", "--task", task, "--source", SIM.format(task=task, seed=seed, w=256, h=192),
                  "--headless", "--count", str(count), "--out", str(folder), "--no-progress"])

    step("capture", capture)
    step("train", lambda: _cli(["train", "--task", task, "--data", str(data), "--out", str(bundle),
                                "--arch", "efficientnet_lite0", "--mode", "fast", "--input-size",
                                "128", "--views", "1", "--no-progress", "--workers", "0"]))
    step("export", lambda: _cli(["export", "--model", str(bundle)]))
    step("eval", lambda: _cli(["eval", "--model", str(bundle), "--data", str(fresh), "--json",
                               str(out / "eval.json"), "--no-progress"]))
    video, lines = out / "live.mp4", out / "live.jsonl"
    step("run", lambda: _cli(["run", "--model", str(bundle), "--source",
                              SIM.format(task=task, seed=7, w=640, h=480), "--headless",
                              "--frames", str(frames), "--record", str(video), "--json-out", str(lines)]))
    step("bench", lambda: _cli(["bench", "--model", str(bundle), "--backends", "onnx", "--frames",
                                "100", "--warmup", "10", "--json", str(out / "bench.json"),
                                "--png", str(out / "bench.png")]))
    return _summary(task, out, timings)


def _summary(task: str, out: Path, timings: Dict[str, float]) -> Dict[str, Any]:
    evaluation = json.loads((out / "eval.json").read_text())
    bench = json.loads((out / "bench.json").read_text())["rows"][0]
    rows = [json.loads(line) for line in (out / "live.jsonl").read_text().splitlines() if line]
    live = _live_agreement(rows)
    # From the per-frame lines: frames over the time between the first and last frame.
    span = rows[-1]["time"] - rows[0]["time"] if len(rows) > 1 else 0.0
    loop_fps = round((len(rows) - 1) / span, 1) if span > 0 else None
    names = [k for k in rows[-1]["timings_ms"]] if rows else []
    stages = {k: round(float(np.median([r["timings_ms"][k] for r in rows[1:] if k in r["timings_ms"]])), 2)
              for k in names}
    metric = ({"accuracy": evaluation["accuracy"]} if "accuracy" in evaluation else
              {"rmse_px": evaluation["rmse_px"], "nme": evaluation.get("nme")})
    plan = json.loads((out / "bundle" / "bundle.json").read_text()).get("input_plan") or {}
    return {"task": task, "fresh_frames": evaluation["n"], **metric, "live_agreement": live,
            "input": plan.get("input", "frame"),
            "loop_fps": loop_fps, "stages_ms": stages, "backend": bench["describe"],
            "inference_fps": bench["fps"], "seconds": timings,
            "files": {"dataset": "dataset", "bundle": "bundle", "video": "live.mp4",
                      "plots": "bundle/plots", "bench_chart": "bench.png"}}


def _live_agreement(rows: List[Dict[str, Any]]) -> Any:
    """Share of live frames whose prediction matches the simulator's truth (classes), or the
    mean point error in frame fractions (points)."""
    hits, errors = [], []
    for r in rows:
        result, truth = r["results"][0], r.get("truth") or {}
        if result.get("type") == "class":
            hits.append(result["label"] == truth.get("label"))
        elif result.get("type") == "points" and truth.get("points"):
            for name, xy in result["points"].items():
                if name in truth["points"]:
                    errors.append(((xy[0] - truth["points"][name][0]) ** 2 +
                                   (xy[1] - truth["points"][name][1]) ** 2) ** 0.5)
    if hits:
        return round(sum(hits) / len(hits), 4)
    return round(sum(errors) / len(errors), 4) if errors else None


def report_text(parts: List[Dict[str, Any]], seconds: float) -> str:
    lines = ["# edge-app demo report", "",
             "Simulated camera; fast mode (EfficientNet-Lite0 with offline ImageNet weights at "
             "128 px for crops; a small MLP for landmarks), `--input auto`; ONNX Runtime on the "
             f"CPU. Total {seconds:.0f} s.", "",
             "| task | input | fresh frames | accuracy / error | live agreement | loop FPS | inference FPS | backend |",
             "|---|---|---|---|---|---|---|---|"]
    for p in parts:
        score = ("{:.1%}".format(p["accuracy"]) if "accuracy" in p else
                 "{:.1f} px, NME {:.3f}".format(p["rmse_px"], p["nme"] or float("nan")))
        live = ("{:.1%}".format(p["live_agreement"]) if "accuracy" in p and p["live_agreement"] is not None
                else "{:.3f} of the frame".format(p["live_agreement"]) if p["live_agreement"] is not None else "-")
        lines.append("| {} | {} | {} | {} | {} | {} | {:.1f} | {} |".format(
            p["task"], p["input"], p["fresh_frames"], score, live,
            "{:.1f}".format(p["loop_fps"]) if p["loop_fps"] else "-", p["inference_fps"], p["backend"]))
    lines += ["", "Median ms per live-loop stage:", ""]
    for p in parts:
        lines.append("- {}: {}".format(p["task"], ", ".join(f"{k} {v:.2f}" for k, v in p["stages_ms"].items())))
    lines += ["", "Seconds per step:", ""]
    for p in parts:
        lines.append("- {}: {}".format(p["task"], ", ".join(f"{k} {v}" for k, v in p["seconds"].items())))
    lines += ["", "Each task's folder holds dataset/, bundle/ (model.pt, model.onnx, plots/), "
              "live.mp4 (the annotated stream), live.jsonl, eval.json, bench.json, bench.png and logs/."]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the demo trains and exports a model ({exc}): pip install -e "
                        "'.[headless,train,export]'")
    check_out_folder("--out", args.out)
    if args.captures < 1 or args.frames < 1:
        raise UserError("--captures and --frames must be at least 1")
    out = Path(args.out).expanduser()
    tasks = list(DEMO_TASKS) if args.task == "all" else [args.task]
    start = time.monotonic()
    parts = []
    for task in tasks:
        print(f"{task}:", flush=True)
        parts.append(demo_task(task, out / task, args.captures, args.frames))
        p = parts[-1]
        score = ("accuracy {:.1%}".format(p["accuracy"]) if "accuracy" in p else
                 "nose/eye error {:.1f} px (NME {:.3f})".format(p["rmse_px"], p["nme"] or float("nan")))
        print("  -> {} model: {} on {} fresh frames; live loop {:.1f} FPS on {}".format(
            p["input"], score, p["fresh_frames"], p["loop_fps"] or 0.0, p["backend"]), flush=True)
    seconds = time.monotonic() - start
    atomic_write_text(out / "report.md", report_text(parts, seconds))
    atomic_write_text(out / "report.json", json_text({"tasks": parts, "seconds": round(seconds, 1)},
                                                      indent=2) + "\n")
    print("report: {} ({:.0f} s in all)".format(out / "report.md", seconds))
    return 0
