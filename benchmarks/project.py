"""The CPU figures this project tracks, each a ratio measured within one run:

    python benchmarks/project.py [--size 224] [--threads 2] [--frames 200] [--model BUNDLE]

  loop / inference     live-loop FPS over inference-only FPS (ONNX Runtime, a 640x480 video
                       file, headless, no recording; same thread count)
  ONNX Runtime / torch inference speed of the exported graph over PyTorch eager
  preprocess ms        resize + colour order (whole frame) and the subject crop, per
                       640x480 and 1280x720 frame
  full / fast epoch    seconds per pass over the data: fine-tuning everything vs the fast
                       mode's frozen-backbone features (one view) plus a head epoch
  capture saves/s      the capture tool's sustained save rate (JPEG, 640x480)

Without --model it captures 80 simulated thumbs frames, trains and exports a bundle first.
Not a test: it prints figures for the README's performance section and issue notes.
"""
from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Dict

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from foundation import capture_rate  # noqa: E402
from runtime import inference_fps, make_video  # noqa: E402


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def train_pair(work: Path, size: int) -> Dict[str, Any]:
    """A fast-mode and a one-epoch full-mode run on the same simulated dataset."""
    from edge_app.cli import main
    from edge_app.train.pipeline import train

    data = work / "data"
    quiet(main, ["capture", "--task", "thumbs", "--source", "sim://thumbs?seed=1", "--headless",
                 "--count", "80", "--out", str(data), "--no-progress"])
    common = dict(arch="efficientnet_lite0", input_size=size, workers=1, input="frame")
    fast = quiet(train, "thumbs", data, work / "fast", dict(common, mode="fast", views=1), progress=False)
    full = quiet(train, "thumbs", data, work / "full", dict(common, mode="full", epochs=1), progress=False)
    quiet(main, ["export", "--model", str(work / "fast")])
    n = fast["train_count"]
    head_epoch = (fast["timings"]["train_seconds"] - fast["timings"]["feature_seconds"]) / max(
        1, fast["config"]["epochs"])
    fast_epoch = fast["timings"]["feature_seconds"] / 2 + head_epoch   # clean + 1 augmented view
    return {"fast_epoch_s": fast_epoch, "full_epoch_s": full["timings"]["train_seconds"], "images": n}


def preprocess_ms(size: int) -> Dict[str, float]:
    from edge_app.model.preprocess import to_model_input
    from edge_app.subject.crop import crop_box, crop_input

    out = {}
    for w, h in ((640, 480), (1280, 720)):
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        cb = crop_box((w * 0.3, h * 0.2, w * 0.6, h * 0.8))
        for name, fn in (("resize", lambda: to_model_input(frame, (size, size))),
                         ("crop", lambda: crop_input(frame, cb, (size, size)))):
            fn()
            start = time.perf_counter()
            for _ in range(200):
                fn()
            out[f"{name} {w}x{h}"] = (time.perf_counter() - start) / 200 * 1000
    return out


def loop_and_backends(bundle: Path, threads: int, frames: int) -> Dict[str, float]:
    from edge_app.backends.ort import OnnxBackend
    from edge_app.model.info import load_model_info
    from edge_app.model.preprocess import to_model_input
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.sources import FrameReader, open_source
    from edge_app.subject.stage import SubjectStage
    from edge_app.train.torch_backend import TorchBackend

    info = load_model_info(str(bundle))
    onnx, torch_b = OnnxBackend(threads=threads), TorchBackend(threads=threads)
    onnx.load(info)
    torch_b.load(info)
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "clip.avi", info.task.name, frames, 640, 480)
        src = open_source(str(video))
        src.open()
        batch = to_model_input(src.read().image, info.input_size)[None]
        src.close()
        loops, infers = [], []
        for _ in range(3):
            infers.append(inference_fps(onnx, batch, frames))
            # A video has no ground truth: crop models use the whole frame as the subject here,
            # so that this ratio measures the loop, not a detector.
            stage = SubjectStage([info.subject], "whole") if info.subject else None
            with FrameReader(open_source(str(video))) as reader:
                loops.append(run_loop(reader, [Runner(info, onnx)], subjects=stage).fps)
        torch_fps = inference_fps(torch_b, batch, max(20, frames // 5))
    infer = statistics.median(infers)
    return {"loop_fps": statistics.median(loops), "infer_fps": infer, "torch_fps": torch_fps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="model input size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--model", type=Path, help="an exported bundle (default: train one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edge-project-bench-"))
    try:
        figures: Dict[str, Any] = {}
        if args.model is None:
            figures.update(train_pair(work, args.size))
            bundle = work / "fast"
        else:
            bundle = args.model
        figures.update(loop_and_backends(bundle, args.threads, args.frames))
        pre = preprocess_ms(args.size)
        saves = capture_rate("thumbs", 300, 640, 480)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"input {args.size}x{args.size}, {args.threads} threads")
    print("loop / inference      {:.2f}  ({:.1f} / {:.1f} FPS, ONNX Runtime CPU)".format(
        figures["loop_fps"] / figures["infer_fps"], figures["loop_fps"], figures["infer_fps"]))
    print("ONNX Runtime / torch  {:.2f}  ({:.1f} / {:.1f} FPS)".format(
        figures["infer_fps"] / figures["torch_fps"], figures["infer_fps"], figures["torch_fps"]))
    for name, ms in pre.items():
        print(f"preprocess {name:<18} {ms:.2f} ms")
    if "full_epoch_s" in figures:
        print("full / fast epoch     {:.1f}  ({:.1f} s / {:.1f} s for {} images)".format(
            figures["full_epoch_s"] / figures["fast_epoch_s"], figures["full_epoch_s"],
            figures["fast_epoch_s"], figures["images"]))
    print(f"capture saves/s       {saves:.0f}  (JPEG, 640x480, simulated camera)")


if __name__ == "__main__":
    main()
