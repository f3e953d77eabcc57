"""Detection accuracy: greedy one-to-one matching of detections to ground-truth boxes at an
IoU threshold (the PASCAL VOC rule), counted over a set of frames."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4); corners x0, y0, x1, y1."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class Counts:
    """True positives, false positives and missed objects over frames."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, found: np.ndarray, scores: Sequence[float], truth: np.ndarray,
            iou: float = 0.5) -> None:
        """One frame: detections (best score first wins) against its ground-truth boxes."""
        found = np.asarray(found, np.float64).reshape(-1, 4)
        truth = np.asarray(truth, np.float64).reshape(-1, 4)
        overlap = iou_matrix(found, truth)
        taken = np.zeros(len(truth), bool)
        for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
            candidates = np.where(~taken & (overlap[i] >= iou))[0]
            if len(candidates):
                taken[candidates[np.argmax(overlap[i, candidates])]] = True
                self.tp += 1
            else:
                self.fp += 1
        self.fn += int((~taken).sum())

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
