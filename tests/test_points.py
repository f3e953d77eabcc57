"""Point tasks on the layouts real data comes in, through every input kind: the course's
regression folders (one labelled point per image, 224x224) and a keypoints CSV in pixels with
points missing and outside the image, each through train, eval, export parity and the loop."""
from __future__ import annotations

import csv
import json
import random
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge_app.model.inputs import INPUT_KINDS

from helpers import capture_sim, fast_train

POINTS = ("nose", "left_eye", "right_eye")


def course_layout(native: Path, out: Path) -> Path:
    """``<point>/<x>_<y>_<uuid>.jpg``: each capture resized to 224x224 with one of its points."""
    import cv2

    rows = list(csv.DictReader((native / "labels.csv").open()))
    for i, row in enumerate(rows):
        point = POINTS[i % len(POINTS)]
        image = cv2.resize(cv2.imread(str(native / row["image"])), (224, 224))
        x, y = float(row[point + "_x"]) * 224, float(row[point + "_y"]) * 224
        (out / point).mkdir(parents=True, exist_ok=True)
        name = f"{int(x)}_{int(y)}_{uuid.uuid4()}.jpg"
        assert cv2.imwrite(str(out / point / name), image)
    return out


def pixel_csv(native: Path, out: Path) -> Path:
    """``points.csv`` in pixels: about one point in six missing, one in twenty off the image."""
    import cv2

    rng = random.Random(0)
    (out / "img").mkdir(parents=True)
    lines = [["image"] + [f"{p}_{a}" for p in POINTS for a in "xy"]]
    for i, row in enumerate(csv.DictReader((native / "labels.csv").open())):
        image = cv2.imread(str(native / row["image"]))
        h, w = image.shape[:2]
        name = f"img/{i:03d}.jpg"
        assert cv2.imwrite(str(out / name), image)
        cells = []
        for p in POINTS:
            x, y = float(row[p + "_x"]) * w, float(row[p + "_y"]) * h
            roll = rng.random()
            cells += ["", ""] if roll < 0.15 else [str(x + 2 * w), str(y)] if roll < 0.2 else \
                [f"{x:.1f}", f"{y:.1f}"]
        lines.append([name] + cells)
    with (out / "points.csv").open("w", newline="") as f:
        csv.writer(f).writerows(lines)
    return out


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("points")
    native = capture_sim("face", root / "native", 45, seed=2)
    return {"course": course_layout(native, root / "course"), "pixels": pixel_csv(native, root / "pixels")}


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["course", "pixels"])
@pytest.mark.parametrize("kind", sorted(INPUT_KINDS))
def test_point_task_through_every_stage(layouts, tmp_path, layout, kind, capsys):
    from edge_app.cli import main

    data, out = layouts[layout], tmp_path / "bundle"
    assert main(["train", "--task", "face", "--data", str(data), "--out", str(out), "--input", kind]
                + fast_train()) == 0
    plan = json.loads((out / "bundle.json").read_text())["input_plan"]
    assert plan["input"] == kind
    report = tmp_path / "eval.json"
    assert main(["eval", "--model", str(out), "--data", str(data), "--json", str(report),
                 "--no-progress"]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["n"] == 45 and metrics["rmse_px"] == metrics["rmse_px"], "no NaN error"
    # the course's layout labels one point per image: NME over the eyes of the face found
    assert metrics["nme"] is not None and 0 < metrics["nme"] < 1
    assert metrics["nme_by"] == ("eyes of the face found" if layout == "course"
                                 else "labelled eyes, else the face found")
    base = metrics["baseline"]   # the subject stage's own points, untrained, on the same images
    assert base["name"] == "MediaPipe Face Mesh" and base["detection_rate"] > 0.5, base
    assert 0 < base["rmse_px"] < 50 and 0 < base["nme"] < 1, base
    assert main(["export", "--model", str(out)]) == 0
    assert "parity vs PyTorch" in capsys.readouterr().out
    assert main(["export", "--model", str(out), "--data", str(data)]) == 0
    records = tmp_path / "live.jsonl"
    assert main(["run", "--model", str(out), "--source", "sim://face?seed=7&width=256&height=192",
                 "--frames", "6", "--headless", "--json-out", str(records)]) == 0
    results = [json.loads(line)["results"][0] for line in records.read_text().splitlines()]
    assert len(results) == 6 and all(r["type"] in ("points", "none") for r in results)
    assert any(r["type"] == "points" for r in results), "the simulated face is found"


def test_a_constant_offset_is_told_apart_from_noise():
    """Labels that follow another convention (every nose 3 px lower) show as a bias that
    explains the error, and eval's hint names it; scattered errors of the same size do not."""
    pytest.importorskip("torch")
    from edge_app.tasks.spec import load_task
    from edge_app.train.task_kinds import KEYPOINTS, bias_hint

    task = load_task("face")
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, (60, len(task.points), 2)).astype(np.float32)
    sizes = np.full((60, 2), 100.0)
    shifted = truth + np.array([0.0, 0.03], np.float32)
    m = KEYPOINTS.metrics(shifted, truth, task, sizes)
    assert m["bias_share"] > 0.95 and all(abs(y - 3.0) < 1e-3 for _, y in m["bias_px"].values())
    assert "constant offset" in bias_hint(m) and "+0.0,+3.0" in bias_hint(m)
    noisy = truth + rng.normal(0, 0.03, truth.shape).astype(np.float32)
    m = KEYPOINTS.metrics(noisy, truth, task, sizes)
    assert m["bias_share"] < 0.3 and bias_hint(m) == ""
    assert bias_hint(dict(KEYPOINTS.metrics(shifted[:5], truth[:5], task, sizes[:5]))) == "", \
        "too few images to tell"
    truth[:, 0] = np.nan   # a point labelled nowhere (course layout) has no bias to report
    m = KEYPOINTS.metrics(shifted, truth, task, sizes)
    assert task.points[0] not in m["bias_px"] and len(m["bias_px"]) == len(task.points) - 1
