"""Shared test helpers: small generated images and trees, a scripted frame source, a full
disk, the real photos when present, and the command line's capture, train, eval and run as
the tests drive them (test files import these: ``from helpers import ...``; the fixtures are
in conftest.py)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest

from edge_app.sources.base import FrameSource, SourceLost

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fuzz_settings():
    """hypothesis settings for the fuzz tests (None where hypothesis is not installed: the
    Python 3.8 run installs the runtime and pytest only). CI runs a fixed, quick set;
    FUZZ_EXAMPLES=20000 searches further (random each run)."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return None
    examples = int(os.environ.get("FUZZ_EXAMPLES", "0"))
    return settings(max_examples=examples or 300, deadline=None, derandomize=not examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def write_image(path: Path, w: int = 64, h: int = 48, value: int = 128, ext: str = ".jpg") -> Path:
    """Write a small real image (with some structure, so JPEG is not trivial)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 4, (255 - value, 40, 200), -1)
    if path.suffix == "":
        path = path.with_suffix(ext)
    assert cv2.imwrite(str(path), img)
    return path


def write_truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half: OpenCV decodes it silently, the dataset reader must not."""
    full = write_image(path, 64, 64)
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    return full


def zero_png(w: int, h: int) -> bytes:
    """A whole, valid PNG of ``w`` x ``h`` black pixels (1 bit deep): small on disk, huge once
    decoded (30000x30000 is 109 KB and 2.7 GB as OpenCV's BGR; 60000x60000, 437 KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (1 + (w + 7) // 8), zlib.compressobj(9)
    rows, rest = divmod(h, 256)
    idat = b"".join([packer.compress(row * 256) for _ in range(rows)] + [packer.compress(row * rest), packer.flush()])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))



def disk_full_after(monkeypatch, writes: int) -> None:
    """Make the dataset writer's image writes fail with ENOSPC after ``writes`` successes."""
    from edge_app.dataset import atomic

    real, calls = atomic.atomic_write_bytes, {"n": 0}

    def flaky(path, data, chunk=1 << 20):
        calls["n"] += 1
        if calls["n"] > writes:
            enospc()
        return real(path, data, chunk)

    monkeypatch.setattr("edge_app.dataset.writer.atomic_write_bytes", flaky)


def enospc(*args, **kwargs):
    """Stands in for a write or fsync on a full disk."""
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def write_class_tree(root: Path, counts: dict, w: int = 64, h: int = 48, ext: str = ".jpg") -> Path:
    """A folder per class holding ``counts[name]`` small images named ``NAME_I.ext``."""
    for name, n in counts.items():
        for i in range(n):
            write_image(Path(root) / name / f"{name}_{i}{ext}", w, h, value=30 + 40 * i % 200)
    return Path(root)


# Tests assert events and counts, never how long something took: a busy machine (both cores
# training) stretches every duration. A wait has only this hang guard, minutes long.
HANG_GUARD = 300.0


def wait_for(check, what: str, guard: float = HANG_GUARD, poll: float = 0.02):
    """``check()``'s first true value, polled; fails only when it never comes (a hang)."""
    end = time.monotonic() + guard
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"hung: no {what} in {guard:.0f} s")
        time.sleep(poll)


def finishes(fn, guard: float = HANG_GUARD) -> bool:
    """Whether ``fn()`` returns (in a thread) before the hang guard: for calls that must not
    wait for what they interrupt (a stop during an hour-long backoff)."""
    import threading

    done = threading.Event()

    def call():
        fn()
        done.set()

    threading.Thread(target=call, daemon=True).start()
    return done.wait(guard)


def checked(studio, timeout: float = HANG_GUARD):
    """``studio`` once its camera check has answered (shots wait for it), for chaining."""
    end = time.monotonic() + timeout
    while studio.state()["camera_check"]["state"] == "checking":
        if time.monotonic() > end:
            raise AssertionError(f"the camera check gave no answer in {timeout:.0f} s")
        time.sleep(0.05)
    return studio


class FakeBackend:
    """A backend that answers every batch with the same ``scores`` (loop, swap and collect
    tests: the model's answer is fixed, what is tested is around it)."""

    precision = "fp32"

    def __init__(self, scores=(0.5, 0.5)):
        self.scores, self.closed = np.asarray(scores, np.float32), False

    def infer(self, batch):
        return [self.scores]

    def warmup(self, info):
        pass

    def describe(self):
        return "fake"

    def close(self):
        self.closed = True


class FakeSource(FrameSource):
    """Counts opens and closes; can fail at a frame, lose the device, or refuse to reopen."""

    def __init__(self, n=None, live=False, fail_at=None, lose_at=None, reopen_failures=0,
                 delay=0.0):
        super().__init__("fake://")
        self.n, self.live, self.fail_at, self.lose_at = n, live, fail_at, lose_at
        self.reopen_failures, self.delay = reopen_failures, delay
        self.opens = self.closes = self.served = 0
        self.lost = False

    def open(self):
        self.opens += 1
        if self.lost and self.reopen_failures > 0:
            self.reopen_failures -= 1
            raise OSError("device not there")
        self.lost = False

    def close(self):
        self.closes += 1

    def _grab(self):
        if self.delay:
            time.sleep(self.delay)
        if self.n is not None and self.served >= self.n:
            return None
        if self.fail_at is not None and self.served == self.fail_at:
            raise RuntimeError("decoder crashed")
        if self.lose_at is not None and self.served == self.lose_at and not self.lost:
            self.lost = True
            self.lose_at = None
            raise SourceLost("fake://: stopped delivering frames")
        self.served += 1
        return np.zeros((4, 4, 3), np.uint8), {}


# -- the command line: capture, train, eval, run --------------------------------------------

def fast_train(size: int = 64, views: Optional[int] = 1, *extra: str) -> List[str]:
    """Fast-mode training options small enough for tests (``size`` px, ``views`` augmented
    views per image or the default where None, no cache) and ``extra`` after them."""
    args = ["--arch", "efficientnet_lite0", "--mode", "fast", "--input-size", str(size)]
    if views is not None:
        args += ["--views", str(views)]
    return args + ["--no-cache", "--no-progress", "--workers", "0"] + list(extra)


FAST_TRAIN = fast_train()   # 64 px, one augmented view


def capture_sim(task: str, out: Path, count: int, seed: int, frame: str = "256x192") -> Path:
    """``count`` frames of the simulated camera for ``task`` (``frame`` WxH) captured into ``out``."""
    from edge_app.cli import main

    width, height = frame.split("x")
    assert main(["capture", "--task", task, "--source", f"sim://{task}?seed={seed}&width={width}&height={height}", "--headless", "--count", str(count), "--out", str(out),
        "--no-progress"]) == 0
    return out


def train_bundle(task: str, data: Path, out: Path, *options: str) -> Path:
    """``edge-app train`` of ``task`` on ``data`` into ``out`` (``options``: fast_train(...) and
    the like); it must succeed."""
    from edge_app.cli import main

    assert main(["train", "--task", task, "--data", str(data), "--out", str(out)] + list(options)) == 0
    return out


def eval_json(bundle: Path, data: Path, report: Path, *options: str) -> dict:
    """``edge-app eval`` of ``bundle`` on ``data``: the metrics it wrote to ``report``."""
    from edge_app.cli import main

    assert main(["eval", "--model", str(bundle), "--data", str(data), "--json", str(report),
                 "--no-progress"] + list(options)) == 0
    return json.loads(Path(report).read_text())


def sim_train_eval(task: str, root: Path, count: int, fresh: int, *options: str):
    """Capture ``count`` simulated frames of ``task`` (seed 1) and ``fresh`` others (seed 9),
    train on the first with ``options`` and evaluate on the others: (bundle, metrics)."""
    pytest.importorskip("torch")
    data = capture_sim(task, root / "d", count, 1)
    bundle = train_bundle(task, data, root / "b", *options)
    return bundle, eval_json(bundle, capture_sim(task, root / "f", fresh, 9), root / "e.json")


def read_jsonl(path: Path) -> list:
    """The records of a JSON-lines file (``edge-app run --json-out``)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def run_jsonl(model, source: str, log: Path, *options: str) -> list:
    """``edge-app run --headless`` of ``model`` on ``source`` with ``--json-out log``: the
    records it wrote."""
    from edge_app.cli import main

    assert main(["run", "--model", str(model), "--source", str(source), "--headless",
                 "--json-out", str(log)] + list(options)) == 0
    return read_jsonl(log)


def sim_bundle(root: Path, task: str, count: int, size: int, frame: str = "256x192",
               extra: tuple = ()) -> Path:
    """Capture ``count`` simulated frames, train a fast-mode crop CNN and export it: the
    bundle the runtime and benchmark tests run (needs the train and export extras)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from edge_app.cli import main

    data = capture_sim(task, root / "data", count, 1, frame)
    out = train_bundle(task, data, root / task, *fast_train(size, None, "--input", "crop", *extra))
    assert main(["export", "--model", str(out)]) == 0
    return out


def chromium_path():
    """Debian's chromium (or another Chromium) for the browser tests, or None."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None
