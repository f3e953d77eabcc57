"""Foundation figures: simulated camera render rate and capture tool save rate on this machine.

    python benchmarks/foundation.py [--frames 300] [--size 640x480]

Not a test: it prints figures for the README's performance section and issue notes.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from edge_app.capture.headless import run_headless
from edge_app.capture.session import CaptureSession
from edge_app.sources import FrameReader, open_source
from edge_app.tasks.spec import builtin_tasks, load_task


def render_rate(task: str, frames: int, width: int, height: int) -> float:
    src = open_source(f"sim://{task}?seed=0&width={width}&height={height}")
    src.open()
    src.read()
    start = time.perf_counter()
    for _ in range(frames):
        src.read()
    return frames / (time.perf_counter() - start)


def capture_rate(task: str, frames: int, width: int, height: int) -> float:
    out = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    try:
        session = CaptureSession(load_task(task), out / "ds")
        src = open_source(f"sim://{task}?seed=0&width={width}&height={height}")
        with FrameReader(src) as reader:
            stats = run_headless(reader, session, frames, progress=False)
        return stats.rate
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print("{:<10} {:>16} {:>22}".format("task", "sim render fps", "capture saves/s (JPEG)"))
    for task in builtin_tasks():
        print(f"{task:<10} {render_rate(task, args.frames, width, height):>16.0f} {capture_rate(task, args.frames, width, height):>22.0f}")


if __name__ == "__main__":
    main()
