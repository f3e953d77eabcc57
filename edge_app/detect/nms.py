"""Class-aware non-maximum suppression through OpenCV's DNN module (in every OpenCV a Jetson
has, JetPack's 4.5 included)."""
from __future__ import annotations

import numpy as np

from edge_app.opencv import cv2


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = 0.45,
        max_det: int = 300) -> np.ndarray:
    """Indices of the boxes (N, 4; x0, y0, x1, y1) kept, best first; boxes of different
    classes never suppress each other."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, np.float64)
    # Shift each class to its own region: one call, no cross-class suppression
    # (NMSBoxesBatched does the same but only exists from OpenCV 4.7).
    offset = (classes.astype(np.float64) * (float(np.abs(boxes).max()) + 1.0))[:, None]
    shifted = boxes + offset
    xywh = np.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    keep = cv2().dnn.NMSBoxes(xywh.tolist(), np.asarray(scores, np.float64).tolist(), 0.0, float(iou))
    keep = np.asarray(keep, np.int64).reshape(-1)
    keep = keep[np.argsort(-np.asarray(scores)[keep], kind="stable")]
    return keep[:max_det]
