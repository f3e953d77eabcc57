"""A detection model's pre- and post-processing around whatever backend runs its graph:
frame -> input batch, raw outputs -> boxes in the frame, with threshold, class filter and NMS."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.detect.geometry import InputMap, clip, letterbox, stretch
from edge_app.detect.layouts import Layout
from edge_app.detect.nms import nms
from edge_app.errors import UserError
from edge_app.opencv import cv2


@dataclass
class Detection:
    box: Tuple[float, float, float, float]   # x0, y0, x1, y1 in frame pixels
    score: float
    class_id: int
    label: str

    def to_dict(self, frame_size: Tuple[int, int]) -> Dict[str, object]:
        w, h = frame_size
        x0, y0, x1, y1 = self.box
        return {"box": [round(x0 / w, 5), round(y0 / h, 5), round(x1 / w, 5), round(y1 / h, 5)],
                "score": round(self.score, 4), "class": self.class_id, "label": self.label}


@dataclass
class Detector:
    """Pre- and post-processing for one detection graph."""

    layout: Layout
    input_size: Tuple[int, int]                  # (height, width)
    labels: List[str] = field(default_factory=list)
    conf: float = 0.25
    iou: float = 0.45
    classes: Optional[Sequence[int]] = None      # keep only these class ids
    max_det: int = 100

    def prepare(self, image: np.ndarray) -> Tuple[np.ndarray, InputMap]:
        """A BGR frame -> the graph's input (1, 3, H, W float32) and how to map back; for
        the built-in detectors, the frame itself (1, H, W, 3 uint8 BGR)."""
        if self.layout.resize == "none":
            return image[None], InputMap(1.0, 1.0, 0.0, 0.0)
        fit = letterbox if self.layout.resize == "letterbox" else stretch
        resized, where = fit(image, self.input_size)
        # One OpenCV pass: BGR -> RGB, (pixel - mean) * scale, HWC -> NCHW float32.
        m = self.layout.mean
        size = (resized.shape[1], resized.shape[0])   # already resized: no second resize
        blob = cv2().dnn.blobFromImage(resized, self.layout.scale, size, (m, m, m), swapRB=True)
        return blob, where

    def decode(self, outputs: Dict[str, np.ndarray], where: InputMap,
               frame_size: Tuple[int, int]) -> List[Detection]:
        """Raw outputs by name -> detections in the frame, best first."""
        boxes, scores, classes = self.layout.decode(outputs, self.input_size, self.conf)
        if self.classes is not None:   # (the layout already dropped scores below conf)
            keep = np.isin(classes, list(self.classes))
            boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        if not self.layout.nms_inside:
            order = nms(boxes, scores, classes, self.iou, self.max_det)
        else:
            order = np.argsort(-scores, kind="stable")[: self.max_det]
        w, h = frame_size
        placed = clip(where.to_frame(boxes[order]), w, h) if len(order) else np.zeros((0, 4))
        return [Detection(tuple(float(v) for v in b), float(s), int(c), self._label(int(c)))  # type: ignore[arg-type]
                for b, s, c in zip(placed, scores[order], classes[order])]

    def _label(self, class_id: int) -> str:
        return self.labels[class_id] if 0 <= class_id < len(self.labels) else str(class_id)


def read_labels(path: Path) -> List[str]:
    """A labels file: one class name per line (jetson-inference's labels.txt, with its
    BACKGROUND first for SSD models)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"--labels {path}: cannot read it ({exc.strerror or exc})")
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise UserError(f"--labels {path}: no class names in it (one per line)")
    return names
