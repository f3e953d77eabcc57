"""Shared test helpers: small generated images and trees, and the real photos when present."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data (real photos) is not present beside the project")
    return SHARED_DATA


def disk_full_after(monkeypatch, writes: int) -> None:
    """Make the dataset writer's image writes fail with ENOSPC after ``writes`` successes."""
    import errno

    from edge_app.dataset import atomic

    real, calls = atomic.atomic_write_bytes, {"n": 0}

    def flaky(path, data, chunk=1 << 20):
        calls["n"] += 1
        if calls["n"] > writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, chunk)

    monkeypatch.setattr("edge_app.dataset.writer.atomic_write_bytes", flaky)


# Fast-mode training options small enough for tests (64 px, one augmented view, no cache).
FAST_TRAIN = ["--arch", "efficientnet_lite0", "--mode", "fast", "--input-size", "64", "--views", "1",
              "--no-cache", "--no-progress", "--workers", "0"]


def capture_sim(task: str, out: Path, count: int, seed: int) -> Path:
    """``count`` frames of the simulated camera for ``task`` (256x192) captured into ``out``."""
    from edge_app.cli import main

    assert main(["capture", "--task", task, "--source", "sim://{}?seed={}&width=256&height=192".format(
        task, seed), "--headless", "--count", str(count), "--out", str(out), "--no-progress"]) == 0
    return out


def sim_bundle(root: Path, task: str, count: int, size: int, frame: str = "256x192",
               extra: tuple = ()) -> Path:
    """Capture ``count`` simulated frames, train a fast-mode crop CNN and export it: the
    bundle the runtime and benchmark tests run (needs the train and export extras)."""
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from edge_app.cli import main

    width, height = frame.split("x")
    data, out = root / "data", root / task
    assert main(["capture", "--task", task, "--source", "sim://{}?seed=1&width={}&height={}".format(
        task, width, height), "--headless", "--count", str(count), "--out", str(data), "--no-progress"]) == 0
    assert main(["train", "--task", task, "--data", str(data), "--out", str(out), "--arch",
                 "efficientnet_lite0", "--mode", "fast", "--input-size", str(size), "--no-cache",
                 "--no-progress", "--workers", "0", "--input", "crop"] + list(extra)) == 0
    assert main(["export", "--model", str(out)]) == 0
    return out
