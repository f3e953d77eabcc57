"""Result types that every stage after inference shares: overlays draw them, logs and the
benchmark serialise them. Decoders are registered by the model output they read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence, Tuple, Union

import numpy as np


@dataclass
class ClassResult:
    """Class probabilities for one frame."""

    labels: Tuple[str, ...]
    scores: np.ndarray

    @property
    def index(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def label(self) -> str:
        return self.labels[self.index]

    @property
    def confidence(self) -> float:
        return float(self.scores[self.index])

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "class", "label": self.label, "confidence": round(self.confidence, 4),
                "scores": {n: round(float(s), 4) for n, s in zip(self.labels, self.scores)}}


@dataclass
class PointsResult:
    """Named points in normalised image coordinates (0..1 of width and height)."""

    names: Tuple[str, ...]
    points: np.ndarray   # (P, 2)

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "points",
                "points": {n: [round(float(x), 5), round(float(y), 5)]
                           for n, (x, y) in zip(self.names, self.points)}}


Result = Union[ClassResult, PointsResult]


def _classes(output: np.ndarray, labels: Sequence[str]) -> ClassResult:
    return ClassResult(tuple(labels), np.asarray(output, dtype=np.float32))


def _points(output: np.ndarray, labels: Sequence[str]) -> PointsResult:
    return PointsResult(tuple(labels), np.asarray(output, dtype=np.float32).reshape(-1, 2))


# Keyed by the exported model's output name (TaskKind.output_name).
DECODERS: Dict[str, Callable[[np.ndarray, Sequence[str]], Result]] = {
    "scores": _classes, "points": _points}


def smooth(history: Sequence[Result]) -> Result:
    """Moving average of the last results (scores or points), so overlays don't flicker."""
    last = history[-1]
    if isinstance(last, ClassResult):
        return ClassResult(last.labels, np.mean([r.scores for r in history], axis=0))  # type: ignore[union-attr]
    return PointsResult(last.names, np.mean([r.points for r in history], axis=0))  # type: ignore[union-attr]
