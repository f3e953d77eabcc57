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
from edge_app.registry import Registry

Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray]   # boxes (N, 4) xyxy px, scores, classes
Shapes = Mapping[str, Sequence[Any]]                     # output name -> shape (dims may be names)


def _never(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> bool:
    return False


def _unknown(shapes: Shapes) -> Optional[int]:
    return None


@dataclass(frozen=True)
class Layout:
    """One detector family: how its outputs are recognised, what input it wants and how its
    outputs are read. Adding a family is one :data:`LAYOUTS` entry."""

    name: str
    resize: str                 # "letterbox" | "stretch" | "none" (the frame as it is)
    mean: float                 # the graph takes (RGB pixel - mean) * scale
    scale: float
    nms_inside: bool
    decode: Callable[[Dict[str, np.ndarray], Tuple[int, int], float], Candidates]
    # Whether a graph with these outputs (and Ultralytics metadata) is of this family.
    matches: Callable[[Shapes, Optional[Mapping[str, str]]], bool] = _never
    # The number of classes the outputs score, where their shapes say so.
    class_count: Callable[[Shapes], Optional[int]] = _unknown
    default_size: Tuple[int, int] = (640, 640)   # (h, w) for a graph with a dynamic input
    outputs: str = ""           # its outputs as the "not a detector" message lists them
    labels_hint: str = ""       # said when a labels file has the wrong number of names


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


NMS_ROWS = 1000   # graphs with NMS inside keep at most max_det rows; raw heads have thousands


def _dim(d: Any) -> Optional[int]:
    return int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else None


def _last(shape: Optional[Sequence[Any]], i: int) -> Optional[int]:
    """Dimension ``i`` of ``shape`` when it is a fixed size, else None."""
    dims = list(shape or [])
    return _dim(dims[i]) if -len(dims) <= i < len(dims) else None


def _head(shapes: Shapes) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """The two inner dimensions of a graph's one 3-D output (None where dynamic), or None
    for any other set of outputs."""
    if len(shapes) != 1:
        return None
    shape = list(next(iter(shapes.values())))
    return (_dim(shape[1]), _dim(shape[2])) if len(shape) == 3 else None


def _is_ssd(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> bool:
    return {"scores", "boxes"} <= set(shapes) and _last(shapes["boxes"], -1) == 4


def _is_nms(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> bool:
    """Rows of six, too few for a raw head (or Ultralytics' metadata says nms=True)."""
    head = _head(shapes)
    if head is None:
        return False
    rows, width = head
    return width == 6 and (rows is None or rows <= NMS_ROWS) or _nms_export(metadata)


def _raw_head(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> Optional[Tuple[int, int]]:
    """A YOLO head before NMS, with both inner dimensions fixed, else None."""
    head = _head(shapes)
    if head is None or _is_nms(shapes, metadata):
        return None
    rows, width = head
    return (rows, width) if rows is not None and width is not None else None


def _is_yolov5(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> bool:
    head = _raw_head(shapes, metadata)   # [1, N, 5 + C]: many more rows than columns
    return head is not None and head[0] >= head[1]


def _is_yolov8(shapes: Shapes, metadata: Optional[Mapping[str, str]]) -> bool:
    head = _raw_head(shapes, metadata)   # [1, 4 + C, N]
    return head is not None and head[0] < head[1]


def _ssd_classes(shapes: Shapes) -> Optional[int]:
    return _last(shapes.get("scores"), -1)             # background included


def _yolov5_classes(shapes: Shapes) -> Optional[int]:
    n = _last(next(iter(shapes.values()), None), -1)   # 5 + C
    return n - 5 if n else None


def _yolov8_classes(shapes: Shapes) -> Optional[int]:
    n = _last(next(iter(shapes.values()), None), 1)    # 4 + C
    return n - 4 if n else None


# Tried in this order by recognise(): the first that matches wins.
LAYOUTS: Registry[Layout] = Registry("--layout", {layout.name: layout for layout in [
    Layout("ssd", "stretch", 127.5, 1 / 127.5, False, _ssd, matches=_is_ssd,
           class_count=_ssd_classes, default_size=(300, 300),
           outputs="SSD-Mobilenet (scores [1,N,C] + boxes [1,N,4])",
           labels_hint="SSD label files start with BACKGROUND"),
    Layout("yolov5", "letterbox", 0.0, 1 / 255.0, False, _yolov5, matches=_is_yolov5,
           class_count=_yolov5_classes,
           outputs="YOLOv5 [1,N,5+C]"),
    Layout("yolov8", "letterbox", 0.0, 1 / 255.0, False, _yolov8, matches=_is_yolov8,
           class_count=_yolov8_classes,
           outputs="YOLOv8/11 [1,4+C,N]"),
    Layout("yolo-nms", "letterbox", 0.0, 1 / 255.0, True, _yolo_nms, matches=_is_nms,
           outputs="YOLO with NMS [1,N,6]"),
]}.items())
# Not in the registry: never recognised from a graph, only named by the built-in detectors.
# Its size is only for warm-up, since they take frames as they are.
BUILTIN_LAYOUT = Layout("subjects", "none", 0.0, 1.0, True, _yolo_nms, default_size=(480, 640))


def recognise(shapes: Shapes, metadata: Optional[Mapping[str, str]] = None) -> Layout:
    """The layout of a graph with these outputs (and Ultralytics metadata, when present), or
    one line naming what was found and what is supported."""
    for layout in LAYOUTS.values():
        if layout.matches(shapes, metadata):
            return layout
    found = ", ".join(f"{n} {list(s)}" for n, s in shapes.items())
    raise UserError("outputs {} are not a detector layout this app reads: {}; pass --layout {} "
                    "to force one".format(found, ", ".join(l.outputs for l in LAYOUTS.values()),
                                          "|".join(LAYOUTS)))


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
