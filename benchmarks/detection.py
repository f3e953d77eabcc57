"""Detection figures: accuracy of the built-in detectors, and the cost of decode + NMS and of
each live-loop stage. Not a test: it prints figures (and --json writes them).

    python benchmarks/detection.py [--data ../shared/data] [--crowd-frames 200] [--frames 300]

1. ``--model faces`` on the MTFL lfw_5590 photos (80x80 crops a face fills: the border retry
   is what finds them): a photo counts as found when a box holds all five annotated points,
   and a box as right when it holds them; with the retry on and off.
2. ``--model faces`` and ``--model hands`` (MediaPipe, not the simulator's truth) on the
   ``sim://crowd`` scene: precision and recall at IoU 0.5 against the drawn subjects.
3. Decode + NMS per frame on heads shaped like the real exports with 80 (COCO) classes.
4. The live loop's per-stage ms at 640x480 with ONNX Runtime on this CPU: a YOLOv8-shaped
   graph (constant heads, so ``infer`` is not a real network's), and ``--model faces``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")

from edge_app.detect import fixtures  # noqa: E402
from edge_app.detect.builtin import SubjectsBackend  # noqa: E402
from edge_app.detect.detector import Detector  # noqa: E402
from edge_app.detect.geometry import InputMap  # noqa: E402
from edge_app.detect.layouts import LAYOUTS  # noqa: E402
from edge_app.detect.loading import DetectOptions  # noqa: E402
from edge_app.detect.metrics import Counts  # noqa: E402
from edge_app.image_files import load_image  # noqa: E402
from edge_app.model.info import load_model_info  # noqa: E402
from edge_app.sources import FrameReader, open_source  # noqa: E402

IDENTITY = InputMap(1.0, 1.0, 0.0, 0.0)   # the built-in detectors answer in frame pixels


def lfw_faces(data: Path, retry: bool) -> Dict[str, Any]:
    info = load_model_info("faces", DetectOptions())
    backend = SubjectsBackend(provider="mediapipe", tracking=False, retry=retry)
    backend.load(info)
    rows = list(csv.DictReader((data / "faces_mtfl/keypoints.csv").open()))
    rows = [r for r in rows if "lfw_5590" in r["image"]]
    found = right = boxes = 0
    start = time.perf_counter()
    for r in rows:
        image = load_image(data / "faces_mtfl" / r["image"])   # the project's one reader
        pts = np.array([[float(r[k + "_x"]), float(r[k + "_y"])] for k in
                        ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")])
        backend.misses = 0   # every photo is a new scene: the retry is not spaced out
        dets = backend.find(image)["detections"][0]
        holds = [((pts >= d[:2]) & (pts <= d[2:4])).all() for d in dets if d[4] >= 0.25]
        boxes += len(holds)
        right += sum(holds)
        found += any(holds)
    seconds = time.perf_counter() - start
    backend.close()
    return {"photos": len(rows), "recall": round(found / len(rows), 4),
            "precision": round(right / max(1, boxes), 4), "ms_per_photo": round(1000 * seconds / len(rows), 2)}


def crowd(kind: str, frames: int) -> Dict[str, Any]:
    info = load_model_info(kind + "s", DetectOptions())
    backend = SubjectsBackend(provider="mediapipe", tracking=False)
    backend.load(info)
    src = open_source(f"sim://crowd?seed=0&count={frames}")
    src.open()
    counts = Counts()
    for _ in range(frames):
        frame = src.read()
        out = backend.find(frame.image)
        dets = info.detector.decode(out, IDENTITY, (640, 480))
        truth = [np.array(s["box"]) * [640, 480, 640, 480] for s in frame.truth["subjects"] if s["kind"] == kind]
        counts.add(np.array([d.box for d in dets]), [d.score for d in dets], np.array(truth))
    backend.close()
    return {"frames": frames, "objects": counts.tp + counts.fn, "precision": round(counts.precision, 4),
            "recall": round(counts.recall, 4)}


def decode_cost(frames: int) -> Dict[str, Any]:
    out = {}
    for layout, rows in fixtures.ROWS.items():
        heads = fixtures.heads(layout, classes=80)
        classes = 81 if layout == "ssd" else 80
        det = Detector(LAYOUTS[layout], fixtures.SIZE[layout], [str(i) for i in range(classes)])
        _, where = det.prepare(np.zeros((480, 640, 3), np.uint8))
        times = []
        for _ in range(frames):
            start = time.perf_counter()
            kept = det.decode(heads, where, (640, 480))
            times.append((time.perf_counter() - start) * 1000)
        shape = {k: list(v.shape) for k, v in heads.items()}
        out[layout] = {"shape": shape, "kept": len(kept), "p50_ms": round(float(np.median(times)), 3),
                       "p95_ms": round(float(np.percentile(times, 95)), 3)}
    return out


def loop_stages(model: str, frames: int, labels: str = "", provider: str = "mediapipe") -> Dict[str, Any]:
    from edge_app.backends.ort import OnnxBackend
    from edge_app.runtime.loop import Runner, run_loop

    info = load_model_info(model, DetectOptions(labels=labels or None))
    if info.runs_on:
        backend: Any = SubjectsBackend(provider=provider, tracking=False)
    else:
        backend = OnnxBackend()
    backend.load(info)
    backend.warmup(info)
    with FrameReader(open_source(f"sim://crowd?seed=1&count={frames}")) as reader:
        stats = run_loop(reader, [Runner(info, backend)], max_frames=frames)
    backend.close()
    return {"fps": round(stats.fps, 1), "stages_ms": {k: round(v, 3) for k, v in stats.stages_ms.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", "--data", dest="data", type=Path,
                   default=Path(__file__).resolve().parents[2] / "shared/data",
                   help="the real photos (default: ../shared/data beside the project)")
    p.add_argument("--crowd-frames", type=int, default=200)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    result: Dict[str, Any] = {}
    if (args.data / "faces_mtfl/keypoints.csv").is_file():
        result["lfw_faces"] = {"retry": lfw_faces(args.data, True), "no_retry": lfw_faces(args.data, False)}
        print("faces on lfw_5590:", json.dumps(result["lfw_faces"]))
    result["crowd"] = {k: crowd(k, args.crowd_frames) for k in ("face", "hand")}
    print("sim://crowd, MediaPipe, IoU 0.5:", json.dumps(result["crowd"]))
    result["decode_nms"] = decode_cost(args.frames)
    for k, v in result["decode_nms"].items():
        print(f"decode + NMS {k}: {json.dumps(v)}")
    with tempfile.TemporaryDirectory() as tmp:
        import onnx

        path = Path(tmp) / "yolov8-coco.onnx"
        onnx.save(fixtures.graph(fixtures.heads("yolov8", classes=80), (640, 640)), str(path))
        labels = Path(tmp) / "coco.txt"
        labels.write_text("\n".join(f"c{i}" for i in range(80)))
        result["loop_yolov8_shaped"] = loop_stages(str(path), args.frames, str(labels))
    print("loop, YOLOv8-shaped graph (80 classes, ONNX Runtime CPU):", json.dumps(result["loop_yolov8_shaped"]))
    result["loop_faces"] = loop_stages("faces", args.frames)
    print("loop, --model faces (MediaPipe):", json.dumps(result["loop_faces"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
