"""Result types that every stage after inference shares: overlays draw them, logs and the
benchmark serialise them. Decoders are registered by the model output they read."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.registry import Registry


@dataclass
class ClassResult:
    """Class probabilities for one frame."""

    labels: Tuple[str, ...]
    scores: np.ndarray
    subject: Optional[Dict[str, Any]] = None   # kind and box (0..1) of the crop's subject

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
        return _with_subject({"type": "class", "label": self.label, "confidence": round(self.confidence, 4),
                              "scores": {n: round(float(s), 4) for n, s in zip(self.labels, self.scores)}},
                             self.subject)


@dataclass
class PointsResult:
    """Named points in normalised image coordinates (0..1 of width and height)."""

    names: Tuple[str, ...]
    points: np.ndarray   # (P, 2)
    subject: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        return _with_subject({"type": "points",
                              "points": {n: [round(float(x), 5), round(float(y), 5)]
                                         for n, (x, y) in zip(self.names, self.points)}},
                             self.subject)


@dataclass
class NoSubject:
    """The model looks at a hand or face, and there is none in the frame: no answer, rather
    than a class made up from the background."""

    kind: str

    @property
    def text(self) -> str:
        return "no " + self.kind

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "none", "subject": {"kind": self.kind, "box": None}, "label": None}


@dataclass
class DetectionsResult:
    """Boxes found in one frame, best first: corners in 0..1 of the frame, scores, class ids
    and names, and track ids once a tracker has seen them."""

    boxes: np.ndarray                         # (N, 4) x0, y0, x1, y1
    scores: np.ndarray                        # (N,)
    class_ids: np.ndarray                     # (N,)
    names: Tuple[str, ...]                    # per detection
    track_ids: Optional[np.ndarray] = None    # (N,) when tracked

    @classmethod
    def from_detections(cls, found: Sequence[Any], frame_size: Tuple[int, int]) -> DetectionsResult:
        """From :class:`edge_app.detect.detector.Detection` objects in frame pixels."""
        w, h = frame_size
        boxes = np.array([d.box for d in found], np.float64).reshape(-1, 4) / np.array([w, h, w, h])
        return cls(boxes.astype(np.float32), np.array([d.score for d in found], np.float32),
                   np.array([d.class_id for d in found], np.int64), tuple(d.label for d in found))

    def counts(self) -> Dict[str, int]:
        """Detections per class name, most frequent first."""
        out: Dict[str, int] = {}
        for n in self.names:
            out[n] = out.get(n, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> Dict[str, Any]:
        items = []
        for i, (box, score, cid, name) in enumerate(zip(self.boxes, self.scores, self.class_ids, self.names)):
            item = {"box": [round(float(v), 5) for v in box], "score": round(float(score), 4),
                    "class": int(cid), "label": name}
            if self.track_ids is not None:
                item["track"] = int(self.track_ids[i])
            items.append(item)
        return {"type": "detections", "detections": items, "counts": self.counts()}


def _with_subject(out: Dict[str, Any], subject: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if subject is not None:
        out["subject"] = subject
    return out


Result = Union[ClassResult, PointsResult, NoSubject, DetectionsResult]


def _classes(output: np.ndarray, labels: Sequence[str]) -> ClassResult:
    return ClassResult(tuple(labels), np.asarray(output, dtype=np.float32))


def _points(output: np.ndarray, labels: Sequence[str]) -> PointsResult:
    return PointsResult(tuple(labels), np.asarray(output, dtype=np.float32).reshape(-1, 2))


# Keyed by the exported model's output name (TaskKind.output_name).
Decoder = Callable[[np.ndarray, Sequence[str]], Result]
DECODERS: Registry[Decoder] = Registry("output decoder")
DECODERS.register("scores", _classes)
DECODERS.register("points", _points)


def smooth(history: Sequence[Result]) -> Result:
    """Moving average of the last results (scores or points), so overlays don't flicker.
    Only the latest run of answers counts: a frame without the subject resets it."""
    last = history[-1]
    run: List[Result] = []
    for r in reversed(history):
        if type(r) is not type(last):
            break
        run.append(r)
    if isinstance(last, ClassResult):
        return replace(last, scores=np.mean([r.scores for r in run], axis=0))  # type: ignore[union-attr]
    if isinstance(last, PointsResult):
        return replace(last, points=np.mean([r.points for r in run], axis=0))  # type: ignore[union-attr]
    return last
