"""Live-loop figures for the ONNX Runtime CPU backend: loop FPS against inference-only FPS.

    python benchmarks/runtime.py --model BUNDLE [--frames 300] [--threads 2] [--size 640x480]
                                 [--photos DIR] [--subject-provider mediapipe] [--no-tracking]
                                 [--shift noise] [--denoise auto|on|off]

Same thread count for both; a video-file source (rendered from the simulator, or made of real
photos with --photos, each held for 10 frames as a hand held still would be), headless, no
recording; the median of three runs. Models trained on crops run the subject stage (timed as
its own stage; --no-tracking searches every frame afresh) and say on how many frames it found
its subject, the frame of its first answer and the camera look it settled on. --shift renders every frame through a camera problem of train/shifts.py (noise:
a dim sensor's noise at the video's own resolution) into lossless PNG frames, --denoise is
edge-app run's. Not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_app.backends.ort import OnnxBackend
from edge_app.image_files import load_image
from edge_app.model.info import load_model_info
from edge_app.model.preprocess import to_model_input
from edge_app.runtime.loop import Runner, run_loop
from edge_app.sources import FrameReader, open_source
from edge_app.subject.stage import SubjectStage


def make_video(path: Path, task: str, frames: int, width: int, height: int) -> Path:
    import cv2

    src = open_source(f"sim://{task}?seed=0&width={width}&height={height}")
    src.open()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    for _ in range(frames):
        writer.write(src.read().image)
    writer.release()
    return path


def photo_video(path: Path, folder: Path, frames: int, width: int, height: int, hold: int = 10,
                shift: str = "") -> Path:
    import cv2

    from edge_app.sources.folder import list_images
    from edge_app.train.shifts import apply_shift

    photos = list_images(folder, recursive=True)
    if not photos:
        raise SystemExit(f"{folder}: no images")
    if shift:   # lossless frames, as a CSI camera delivers them (MJPG would smooth the noise away)
        path = path.with_suffix("")
        path.mkdir()
    writer = None if shift else cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    for i in range(frames):
        image = load_image(photos[(i // hold * 7919) % len(photos)])   # the project's one reader
        frame = cv2.resize(image, (width, height))
        if writer is None:
            cv2.imwrite(str(path / f"{i:05d}.png"), apply_shift(frame, shift))
        else:
            writer.write(frame)
    if writer is not None:
        writer.release()
    return path


def inference_fps(backend: OnnxBackend, batch: np.ndarray, n: int) -> float:
    backend.infer(batch)
    start = time.perf_counter()
    for _ in range(n):
        backend.infer(batch)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--photos", type=Path, help="make the video from these real photos")
    parser.add_argument("--subject-provider", default="auto")
    parser.add_argument("--no-tracking", action="store_true")
    parser.add_argument("--shift", default="", help="with --photos: a camera shift for every frame")
    parser.add_argument("--denoise", default="auto", choices=("auto", "on", "off"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    info = load_model_info(args.model)
    backend = OnnxBackend(threads=args.threads)
    backend.load(info)
    backend.warmup(info)
    with tempfile.TemporaryDirectory() as tmp:
        if args.photos:
            video = photo_video(Path(tmp) / "clip.avi", args.photos, args.frames, width, height,
                                shift=args.shift)
        else:
            video = make_video(Path(tmp) / "clip.avi", info.task.name, args.frames, width, height)
        src = open_source(str(video))
        src.open()
        image = to_model_input(src.read().image, info.input_size)[None]
        # pictures from the video; a landmark input is a zero row of the model's own width
        names = info.input_names
        batch = (image if names == ("images",) else info.dummy_input(1) if "images" not in names
                 else (image, info.dummy_input(1)[1]))
        src.close()
        loops, infers, stages, found, first = [], [], [], [], []
        for _ in range(3):
            infers.append(inference_fps(backend, batch, args.frames))
            stage = CountingStage([info.subject], args.subject_provider, not args.no_tracking,
                                  args.denoise) if info.subject else None
            with FrameReader(open_source(str(video))) as reader:
                stats = run_loop(reader, [Runner(info, backend)], subjects=stage)
            if stage is not None:
                stage.close()
                found.append(stage.found / max(1, stage.frames))
                first.append(stage.first)
                looks = stage.looks()
            loops.append(stats.fps)
            stages.append(stats.stages_ms)
    loop, infer = statistics.median(loops), statistics.median(infers)
    shape = info.describe_input()
    print("model {} ({}, {}), ONNX Runtime CPU, {} threads, {} frames of {}x{} video".format(
        info.name, shape,
        "subject {} via {}, tracking {}".format(info.subject, args.subject_provider,
                                               "off" if args.no_tracking else "on")
        if info.subject else "whole frame", args.threads, args.frames, width, height))
    print("loop FPS {:.1f}  inference-only FPS {:.1f}  ratio {:.2f}  (runs: {} / {})".format(
        loop, infer, loop / infer, ", ".join(f"{v:.1f}" for v in loops),
        ", ".join(f"{v:.1f}" for v in infers)))
    median_stages = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    print("median ms per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in median_stages.items()))
    if found:
        print("subject found on {:.1f}% of frames ({}, denoise {}); first answer at frame {}; "
              "camera look at the end: {}".format(
                  100 * statistics.median(found), args.shift or "as captured", args.denoise,
                  ", ".join("never" if f is None else str(f) for f in first),
                  ", ".join(f"{k} {v}" for k, v in looks.items())))


class CountingStage(SubjectStage):
    """The live subject stage, counting the frames it found its subject on."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames = self.found = 0
        self.first = None   # the frame of the first answer (0-based)

    def find(self, image, truth=None):
        out = super().find(image, truth)
        hit = all(v is not None for v in out.values())
        if hit and self.first is None:
            self.first = self.frames
        self.frames += 1
        self.found += hit
        return out


if __name__ == "__main__":
    main()
