"""Detector output layouts, from one registry: how each is recognised, what input it wants,
and how its raw outputs become candidate boxes in model-input pixels.

- ``ssd``: SSD-Mobilenet as jetson-inference's pytorch-ssd exports it: ``scores`` [1, N, C]
  (softmax, class 0 is the background) and ``boxes`` [1, N, 4] (x0, y0, x1, y1 in 0..1);
  plain resize, RGB, (pixel - 127.5) / 127.5.
- ``yolov5``: Ultralytics YOLOv5, one output [1, N, 5 + C]: cx, cy, w, h (input pixels),
  objectness, class scores; letterbox, RGB, pixel / 255.
- ``yolov8``: Ultralytics YOLOv8 / 11, one output [1, 4 + C, N]: cx, cy, w, h, class scores.
- ``yolo-nms``: Ultralytics exports with NMS inside the graph (``nms=True``, YOLOv10's
  end-to-end head), [1, K, 6]: x0, y0, x1, y1, score, class.
- ``subjects``: the built-in hand and face detectors (MediaPipe), which take the frame as it
  is and answer in the yolo-nms form, in frame pixels.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge_app.errors import UserError

Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray]   # boxes (N, 4) xyxy px, scores, classes
Shapes = Mapping[str, Sequence[Any]]                     # output name -> shape (dims may be names)


@dataclass(frozen=True)
class Layout:
    name: str
    resize: str                 # "letterbox" | "stretch" | "none" (the frame as it is)
    mean: float                 # the graph takes (RGB pixel - mean) * scale
    scale: float
    nms_inside: bool
    decode: Callable[[Dict[str, np.ndarray], Tuple[int, int], float], Candidates]


def _best(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    cls = scores.argmax(axis=1) if scores.size else np.zeros(0, np.int64)
    return scores[np.arange(len(scores)), cls] if scores.size else np.zeros(0), cls


def _xywh(b: np.ndarray) -> np.ndarray:
    return np.concatenate([b[:, :2] - b[:, 2:4] / 2, b[:, :2] + b[:, 2:4] / 2], axis=1)


def _ssd(out: Dict[str, np.ndarray], size: Tuple[int, int], conf: float) -> Candidates:
    scores, boxes = out["scores"][0], out["boxes"][0]
    score, cls = _best(scores[:, 1:])          # the background never wins a box
    h, w = size
    keep = score >= conf
    return boxes[keep] * np.array([w, h, w, h], np.float64), score[keep], cls[keep] + 1


def _single(out: Dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(out.values()))[0]


def _yolov5(out: Dict[str, np.ndarray], size: Tuple[int, int], conf: float) -> Candidates:
    rows = _single(out)
    rows = rows[rows[:, 4] >= conf]            # class scores are at most the objectness
    score, cls = _best(rows[:, 5:] * rows[:, 4:5])
    keep = score >= conf
    return _xywh(rows[keep, :4]), score[keep], cls[keep]


def _yolov8(out: Dict[str, np.ndarray], size: Tuple[int, int], conf: float) -> Candidates:
    head = _single(out)                        # (4 + C, N): find the columns worth a look first
    keep = (head[4:] >= conf).any(axis=0)
    rows = head[:, keep].T
    score, cls = _best(rows[:, 4:])
    return _xywh(rows[:, :4]), score, cls


def _yolo_nms(out: Dict[str, np.ndarray], size: Tuple[int, int], conf: float) -> Candidates:
    rows = _single(out)
    rows = rows[rows[:, 4] >= conf]
    return rows[:, :4].astype(np.float64), rows[:, 4], rows[:, 5].astype(np.int64)


LAYOUTS: Dict[str, Layout] = {
    "ssd": Layout("ssd", "stretch", 127.5, 1 / 127.5, False, _ssd),
    "yolov5": Layout("yolov5", "letterbox", 0.0, 1 / 255.0, False, _yolov5),
    "yolov8": Layout("yolov8", "letterbox", 0.0, 1 / 255.0, False, _yolov8),
    "yolo-nms": Layout("yolo-nms", "letterbox", 0.0, 1 / 255.0, True, _yolo_nms),
}
BUILTIN_LAYOUT = Layout("subjects", "none", 0.0, 1.0, True, _yolo_nms)
NMS_ROWS = 1000   # graphs with NMS inside keep at most max_det rows; raw heads have thousands


def _dim(d: Any) -> Optional[int]:
    return int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else None


def recognise(shapes: Shapes, metadata: Optional[Mapping[str, str]] = None) -> Layout:
    """The layout of a graph with these outputs (and Ultralytics metadata, when present), or
    one line naming what was found and what is supported."""
    names = set(shapes)
    if {"scores", "boxes"} <= names and _dim(list(shapes["boxes"])[-1]) == 4:
        return LAYOUTS["ssd"]
    if len(shapes) == 1:
        shape = list(next(iter(shapes.values())))
        if len(shape) == 3:
            a, b = _dim(shape[1]), _dim(shape[2])
            if b == 6 and (a is None or a <= NMS_ROWS) or _nms_export(metadata):
                return LAYOUTS["yolo-nms"]
            if a is not None and b is not None:
                return LAYOUTS["yolov8"] if a < b else LAYOUTS["yolov5"]
    found = ", ".join("{} {}".format(n, list(s)) for n, s in shapes.items())
    raise UserError("outputs {} are not a detector layout this app reads: SSD-Mobilenet "
                    "(scores [1,N,C] + boxes [1,N,4]), YOLOv5 [1,N,5+C], YOLOv8/11 [1,4+C,N], "
                    "YOLO with NMS [1,N,6]; pass --layout {} to force one".format(
                        found, "|".join(LAYOUTS)))


def _nms_export(metadata: Optional[Mapping[str, str]]) -> bool:
    args = (metadata or {}).get("args")
    if not args:
        return False
    try:
        return bool(ast.literal_eval(args).get("nms"))
    except (ValueError, SyntaxError, AttributeError):
        return False


def labels_from(metadata: Optional[Mapping[str, str]]) -> List[str]:
    """Class names from Ultralytics metadata (``names``: "{0: 'person', ...}"), else []."""
    text = (metadata or {}).get("names")
    if not text:
        return []
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []
