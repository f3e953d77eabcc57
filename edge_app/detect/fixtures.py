"""Small ONNX detector graphs with known outputs, one per supported layout, shaped like the
real exports (SSD-Mobilenet 300x300 with 3000 anchors; YOLOv5 25200 rows, YOLOv8 8400
columns at 640x640; YOLO with NMS inside, 300 rows). For the tests, the benchmark, and trying
detection in the runtime with nothing downloaded:

    python -m edge_app.detect.fixtures OUT_DIR      # writes <layout>.onnx and labels.txt

The outputs do not depend on the image: the graph adds 0 x its input to constant heads. Needs
the onnx package (the export extra)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

LABELS = ["person", "hand", "face"]
# Objects every fixture reports, in 0..1 of its (square) input: x0, y0, x1, y1, class.
OBJECTS = [(0.10, 0.20, 0.30, 0.50, 0), (0.55, 0.25, 0.75, 0.45, 1), (0.60, 0.60, 0.90, 0.95, 2)]
ROWS = {"ssd": 3000, "yolov5": 25200, "yolov8": 8400, "yolo-nms": 300}
SIZE = {"ssd": (300, 300), "yolov5": (640, 640), "yolov8": (640, 640), "yolo-nms": (640, 640)}


def heads(layout: str, objects: Sequence[Tuple[float, float, float, float, int]] = OBJECTS,
          classes: int = len(LABELS), seed: int = 0) -> Dict[str, np.ndarray]:
    """Raw outputs in ``layout`` for ``objects``: each reported by a few overlapping rows (as
    real heads do, so NMS has work), the rest low-score noise."""
    rng = np.random.default_rng(seed)
    n = ROWS[layout]
    h, w = SIZE[layout]
    boxes = rng.uniform(0, 1, (n, 2)).repeat(2, axis=1) + np.array([0, 0, 0.05, 0.05])
    scores = rng.uniform(0, 0.05, (n, classes)).astype(np.float32)
    copies = 1 if layout == "yolo-nms" else 4   # NMS inside the graph leaves one box each
    for k, (x0, y0, x1, y1, c) in enumerate(objects):
        for j in range(copies):   # the object, and jittered duplicates with lower scores
            row = k * 4 + j
            boxes[row] = np.array([x0, y0, x1, y1]) + rng.normal(0, 0.004, 4) * (j > 0)
            scores[row] = 0.01
            scores[row, c] = 0.9 - 0.1 * j
    return _pack(layout, boxes.clip(0, 1), scores, (h, w))


def _pack(layout: str, boxes: np.ndarray, scores: np.ndarray, size: Tuple[int, int]) -> Dict[str, np.ndarray]:
    h, w = size
    px = boxes * np.array([w, h, w, h])
    cxcywh = np.concatenate([(px[:, :2] + px[:, 2:]) / 2, px[:, 2:] - px[:, :2]], axis=1)
    if layout == "ssd":   # softmax-like scores with the background in column 0
        background = 1.0 - scores.max(axis=1, keepdims=True)
        return {"scores": np.concatenate([background, scores], axis=1)[None].astype(np.float32),
                "boxes": boxes[None].astype(np.float32)}
    if layout == "yolov5":   # objectness x class probability = the score
        objectness = scores.max(axis=1, keepdims=True)
        return {"output0": np.concatenate([cxcywh, objectness, scores / objectness], axis=1)[None].astype(np.float32)}
    if layout == "yolov8":
        return {"output0": np.concatenate([cxcywh, scores], axis=1).T[None].astype(np.float32)}
    best = scores.max(axis=1)
    top = np.argsort(-best)[: len(px)]
    return {"output0": np.concatenate([px[top], best[top, None], scores[top].argmax(axis=1)[:, None]],
                                      axis=1)[None].astype(np.float32)}


def graph(outputs: Dict[str, np.ndarray], size: Tuple[int, int], input_name: str = "images",
          metadata: Optional[Dict[str, str]] = None) -> Any:
    """An ONNX model taking ``input_name`` [1, 3, H, W] and returning ``outputs``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = size
    nodes = [helper.make_node("ReduceSum", [input_name], ["zero_sum"], keepdims=0),
             helper.make_node("Mul", ["zero_sum", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        value = np.asarray(value, np.float32)
        inits.append(numpy_helper.from_array(value, name + "_head"))
        nodes.append(helper.make_node("Add", [name + "_head", "nothing"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    g = helper.make_graph(nodes, "detector", [helper.make_tensor_value_info(
        input_name, TensorProto.FLOAT, [1, 3, h, w])], outs, initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8   # readable by the ONNX Runtime releases JetPack 5 gets
    for key, text in (metadata or {}).items():
        model.metadata_props.add(key=key, value=text)
    onnx.checker.check_model(model)
    return model


def write(out: Path, layouts: Sequence[str] = tuple(ROWS)) -> List[Path]:
    """``<layout>.onnx`` for each layout and the label files they need; the paths written."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (out / "ssd-labels.txt").write_text("\n".join(["BACKGROUND"] + LABELS) + "\n", encoding="utf-8")
    written = []
    for layout in layouts:
        path = out / f"{layout}.onnx"
        name = "input_0" if layout == "ssd" else "images"   # as pytorch-ssd / Ultralytics name it
        onnx.save(graph(heads(layout), SIZE[layout], name), str(path))
        written.append(path)
    return written


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write the graphs and labels into")
    args = p.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
