"""Small composable overlay annotators (in the spirit of supervision's): each draws one thing
on a BGR frame in place. Sizes scale with the frame they are drawn on, so the overlays take the
same share of a 256 px preview as of a 720p stream (the stage table, which cannot shrink below
readable text, is left out of small frames) and text never runs off its edge."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edge_app.model.results import ClassResult, DetectionsResult, NoSubject, PointsResult, Result
from edge_app.opencv import cv2

WHITE, BLACK, GREEN, YELLOW = (255, 255, 255), (0, 0, 0), (80, 220, 80), (0, 220, 255)
POINT_COLORS = [(0, 0, 255), (0, 200, 0), (255, 80, 0), (0, 200, 255), (255, 0, 200)]


MIN_TEXT = 0.3            # Hershey scale below which text is no longer legible (~7 px high)
SMALL_FRAME = 360         # frames less tall than this get the compact overlays


def _scale(frame: np.ndarray) -> float:
    """The overlay scale for this frame: 0.9 at 720p (and 0.6 at 640x480), proportional to the
    smaller side, so a 256 px preview is not covered by text sized for 640 px."""
    h, w = frame.shape[:2]
    return max(MIN_TEXT, 0.9 * min(h / 720.0, w / 960.0))


def _fit(text: str, scale: float, width: int) -> str:
    """``text`` cut (with "...") to fit ``width`` pixels at ``scale``."""
    cv = cv2()
    if cv.getTextSize(text, cv.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width:
        return text
    while len(text) > 1 and cv.getTextSize(text + "...", cv.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width:
        text = text[:-1]
    return text + "..."


def _text(frame: np.ndarray, text: str, org: Any, scale: float, color: Any = WHITE) -> None:
    """Text with a drop shadow, readable on any background. (A thicker dark stroke would not
    line up: Hershey glyphs advance by their stroke width.)"""
    cv = cv2()
    scale = max(MIN_TEXT, scale)
    thick = 1 if scale < 0.7 else 2
    shadow = (int(org[0]) + thick, int(org[1]) + thick)
    cv.putText(frame, text, shadow, cv.FONT_HERSHEY_SIMPLEX, scale, BLACK, thick, cv.LINE_AA)
    cv.putText(frame, text, org, cv.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv.LINE_AA)


def _panel(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """A dark backing for small text (darkens in place, no full-frame blend)."""
    region = frame[max(0, y0):y1, max(0, x0):x1]
    region >>= 1


@dataclass
class Context:
    """Per-frame information annotators may show besides the result."""

    fps: float = 0.0
    stages_ms: Dict[str, float] = field(default_factory=dict)
    status: str = ""
    results: Sequence[Optional[Result]] = ()   # this frame's, one per model


class LabelAnnotator:
    """The predicted class with its confidence, and a bar per class."""

    per_result = True

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        if isinstance(result, NoSubject):
            _text(frame, result.text, (12, int(34 * _scale(frame))), _scale(frame) * 1.2, YELLOW)
            return
        if not isinstance(result, ClassResult):
            return
        cv = cv2()
        s = _scale(frame)
        line = int(34 * s)
        _text(frame, f"{result.label} {result.confidence:.0%}", (12, line), s * 1.2, GREEN)
        width = int(frame.shape[1] * 0.25)
        step = max(int(22 * s), 10)   # a row no lower than its (smallest legible) text
        bar = max(3, min(int(16 * s), step - 3))
        for i, (name, score) in enumerate(zip(result.labels, result.scores)):
            y = line + int(12 * s) + i * step
            cv.rectangle(frame, (12, y), (12 + width, y + bar), (60, 60, 60), -1)
            cv.rectangle(frame, (12, y), (12 + int(width * float(score)), y + bar),
                         GREEN if i == result.index else (200, 200, 200), -1)
            _text(frame, name, (20 + width, y + bar), s * 0.75)


class PointsAnnotator:
    """Each point as a marker with its name."""

    per_result = True

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        if not isinstance(result, PointsResult):
            return
        cv = cv2()
        h, w = frame.shape[:2]
        s = _scale(frame)
        for i, (name, (x, y)) in enumerate(zip(result.names, result.points)):
            p = (int(round(float(x) * w)), int(round(float(y) * h)))
            color = POINT_COLORS[i % len(POINT_COLORS)]
            cv.drawMarker(frame, p, color, cv.MARKER_CROSS, int(22 * s), max(2, int(3 * s)))
            _text(frame, name, (p[0] + int(8 * s), p[1] - int(8 * s)), s * 0.75, color)


class SubjectAnnotator:
    """The box of the hand or face the model looked at, and its landmarks as dots."""

    per_result = True

    def __init__(self, landmarks: bool = True) -> None:
        self.landmarks = landmarks

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        subject = getattr(result, "subject", None)
        if not subject or not subject.get("box"):
            return
        cv = cv2()
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = subject["box"]
        cv.rectangle(frame, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), YELLOW,
                     max(1, int(2 * _scale(frame))))
        for x, y in (subject.get("landmarks") or []) if self.landmarks else []:
            cv.circle(frame, (int(x * w), int(y * h)), max(2, int(3 * _scale(frame))), (255, 200, 0),
                      -1, cv.LINE_AA)


@functools.lru_cache(maxsize=256)
def class_color(name: str) -> Any:
    """A stable BGR colour per class name (several models may each have a class 0)."""
    import zlib

    hue = int((zlib.crc32(name.encode("utf-8")) * 137.508) % 180)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    return tuple(int(v) for v in cv2().cvtColor(hsv, cv2().COLOR_HSV2BGR)[0, 0])


class BoxAnnotator:
    """Each detection's box with its label, score and track id, coloured by class."""

    per_result = True

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        if not isinstance(result, DetectionsResult):
            return
        cv = cv2()
        h, w = frame.shape[:2]
        s = _scale(frame)
        for i, (box, score, _, name) in enumerate(zip(result.boxes, result.scores,
                                                        result.class_ids, result.names)):
            x0, y0, x1, y1 = (int(round(float(v) * d)) for v, d in zip(box, (w, h, w, h)))
            color = class_color(name)
            cv.rectangle(frame, (x0, y0), (x1, y1), color, max(2, int(2 * s)))
            tag = f"{name} {float(score):.0%}"
            if result.track_ids is not None:
                tag = f"#{int(result.track_ids[i])} {tag}"
            _text(frame, tag, (x0 + 3, max(int(18 * s), y0 - int(6 * s))), s * 0.7, color)


class CountAnnotator:
    """How many of each class are in view over all detection models, top left."""

    per_result = False

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        found = [r for r in ctx.results if isinstance(r, DetectionsResult)]
        if not found:
            return
        s = _scale(frame)
        counts: Dict[str, int] = {}
        for r in found:
            for k, n in r.counts().items():
                counts[k] = counts.get(k, 0) + n
        text = ", ".join(f"{n} {k}" for k, n in counts.items()) if counts else "nothing found"
        _text(frame, text, (12, int(34 * s)), s * 1.1, GREEN if counts else YELLOW)


class FpsAnnotator:
    """Rolling FPS and each stage's milliseconds, top right."""

    per_result = False

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        s = _scale(frame)
        if frame.shape[0] < SMALL_FRAME:   # a preview: the FPS only, the table would cover it
            fps = f"{ctx.fps:.0f} FPS"
            x = frame.shape[1] - int(cv2().getTextSize(fps, cv2().FONT_HERSHEY_SIMPLEX, s, 1)[0][0]) - 6
            _text(frame, fps, (x, int(30 * s) + 4), s, YELLOW)
            return
        x, step = frame.shape[1] - int(250 * s), int(22 * s)
        _panel(frame, x - 8, 0, frame.shape[1], int(40 * s) + step * len(ctx.stages_ms))
        _text(frame, f"{ctx.fps:.1f} FPS", (x, int(30 * s)), s * 1.0, YELLOW)
        for i, (stage, ms) in enumerate(ctx.stages_ms.items()):
            _text(frame, f"{stage:<10} {ms:6.1f} ms", (x, int(30 * s) + (i + 1) * step),
                  s * 0.7)


class StatusAnnotator:
    """Backend, precision, input size and camera mode along the bottom."""

    per_result = False

    def draw(self, frame: np.ndarray, result: Optional[Result], ctx: Context) -> None:
        if ctx.status:
            s = _scale(frame)
            h = frame.shape[0]
            _panel(frame, 0, h - int(30 * s), frame.shape[1], h)
            size = max(MIN_TEXT, s * 0.7)
            _text(frame, _fit(ctx.status, size, frame.shape[1] - 20), (10, h - int(10 * s)), size)


def default_annotators() -> List[Any]:
    """The overlays the live loop draws; each ignores results it does not know."""
    return [SubjectAnnotator(), BoxAnnotator(), CountAnnotator(), LabelAnnotator(),
            PointsAnnotator(), FpsAnnotator(), StatusAnnotator()]


def annotate(frame: np.ndarray, results: Sequence[Optional[Result]], ctx: Context,
             annotators: Sequence[Any]) -> np.ndarray:
    """Draw every result (one per model) with the result annotators, then the frame-level
    ones once, in place."""
    ctx.results = results
    for a in annotators:
        for result in (results if a.per_result else [None]):
            a.draw(frame, result, ctx)
    return frame
