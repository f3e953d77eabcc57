"""A stylised face with an expression, eyes, nose and mouth at known positions.

Canonical model: head centre at the origin, half-width one unit, y down. Left and right are
the subject's own: the subject's left eye is on the image's right (+x) for a camera facing them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Tuple

import numpy as np

from edge_app.sim.geometry import SHIFT, apply, fixed, similarity

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
_HEAD_AXES = (1.0, 1.3)


@dataclass(frozen=True)
class Expression:
    """Mouth corner lift (+ is a smile), mouth opening, and inner-brow lift (+ raised)."""

    corner_lift: float
    mouth_open: float
    brow_inner: float
    brow_height: float = 0.0


POSES: Dict[str, Expression] = {
    "neutral": Expression(0.0, 0.0, 0.0),
    "happy": Expression(0.16, 0.08, 0.0, 0.02),
    "sad": Expression(-0.14, 0.0, 0.12),
    "angry": Expression(-0.05, 0.0, -0.16, -0.04),
    "surprised": Expression(0.0, 0.28, 0.06, 0.12),
}


_MOUTH_Y = 0.7


def landmarks(yaw: float, corner_lift: float = 0.0) -> np.ndarray:
    """Canonical (left_eye, right_eye, nose, mouth_left, mouth_right) for a yaw in -1..1."""
    shift = 0.28 * yaw
    corner_y = _MOUTH_Y - corner_lift
    return np.array([(0.38 + shift, -0.15), (-0.38 + shift, -0.15), (0.45 * yaw, 0.3),
                     (0.33 + shift, corner_y), (-0.33 + shift, corner_y)])


def place(scale: float, roll: float, center: Tuple[float, float]) -> np.ndarray:
    """2x3 matrix from canonical units to pixels."""
    return similarity(scale, roll, center)


def draw(img: np.ndarray, expr: Expression, m: np.ndarray, yaw: float,
         skin: Tuple[float, float, float], hair: Tuple[float, float, float],
         hide: Iterable[str] = ()) -> Dict[str, object]:
    """Draw the face; return its landmarks and box in pixels. ``hide`` omits named parts."""
    import cv2

    hidden = set(hide)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    roll = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    lm_c = landmarks(yaw, expr.corner_lift)
    lm = apply(m, lm_c)
    skin_c = tuple(float(c) for c in skin)
    dark = tuple(0.35 * c for c in skin_c)
    line = max(1, int(round(0.05 * scale)))

    def ellipse(center_c, axes, color, thickness=-1, start=0, end=360):
        c = apply(m, np.array([center_c]))[0]
        ax = (int(axes[0] * scale * (1 << SHIFT)), int(axes[1] * scale * (1 << SHIFT)))
        cv2.ellipse(img, tuple(int(v) for v in fixed(c)), ax, roll, start, end, color,
                    thickness, cv2.LINE_AA, SHIFT)

    # Hair behind the top of the head, then the head itself.
    ellipse((0.0, -0.18), (1.06, 1.2), tuple(float(c) for c in hair), -1, 180, 360)
    ellipse((0.0, 0.0), _HEAD_AXES, skin_c)
    shift = 0.28 * yaw
    for side, name in ((1, "left_eye"), (-1, "right_eye")):
        if name in hidden:
            continue
        cx = 0.38 * side + shift
        ellipse((cx, -0.15), (0.17, 0.09), (245.0, 245.0, 245.0))
        ellipse((cx, -0.15), (0.07, 0.07), (40.0, 30.0, 20.0))
        brow_y = -0.36 - expr.brow_height
        inner = np.array([cx - 0.13 * side, brow_y - expr.brow_inner])
        outer = np.array([cx + 0.2 * side, brow_y])
        a, b = fixed(apply(m, np.array([inner, outer])))
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), dark,
                 max(2, int(0.07 * scale)), cv2.LINE_AA, SHIFT)
    if "nose" not in hidden:
        tip = lm_c[2]
        nose = np.array([(shift * 0.6, -0.1), (tip[0] + 0.1, tip[1]), (tip[0] - 0.1, tip[1])])
        cv2.fillConvexPoly(img, fixed(apply(m, nose)), tuple(0.75 * c for c in skin_c),
                           cv2.LINE_AA, SHIFT)
        ellipse((tip[0], tip[1] + 0.02), (0.06, 0.045), dark)
    if "mouth" not in hidden:
        _mouth(img, m, lm_c, expr, dark, line)
    hair_outline = _ellipse_outline((0.0, -0.18), (1.06, 1.2))
    hair_outline = hair_outline[hair_outline[:, 1] <= -0.18 + 1e-9]   # the drawn top half
    pts = apply(m, np.vstack([_ellipse_outline((0.0, 0.0), _HEAD_AXES), hair_outline]))
    box = (float(pts[:, 0].min()), float(pts[:, 1].min()),
           float(pts[:, 0].max()), float(pts[:, 1].max()))
    return {"landmarks": lm, "box": box}


def _mouth(img: np.ndarray, m: np.ndarray, lm_c: np.ndarray, expr: Expression,
           color: Tuple[float, ...], line: int) -> None:
    import cv2

    left, right = lm_c[3], lm_c[4]
    t = np.linspace(0.0, 1.0, 13)
    xs = right[0] + (left[0] - right[0]) * t
    bend = 4 * t * (1 - t)   # 0 at the corners, 1 in the middle
    # The lips' middle stays put; the corners rise for a smile and drop for a frown.
    upper = np.stack([xs, _MOUTH_Y - expr.corner_lift * (1 - bend)], axis=1)
    lower = upper + np.stack([np.zeros_like(t), expr.mouth_open * bend], axis=1)
    if expr.mouth_open > 0.0:
        poly = np.vstack([upper, lower[::-1]])
        cv2.fillPoly(img, [fixed(apply(m, poly))], (60.0, 40.0, 120.0), cv2.LINE_AA, SHIFT)
        cv2.polylines(img, [fixed(apply(m, lower))], False, color, line, cv2.LINE_AA, SHIFT)
    cv2.polylines(img, [fixed(apply(m, upper))], False, color, line + 1, cv2.LINE_AA, SHIFT)


def _ellipse_outline(center: Tuple[float, float], axes: Tuple[float, float]) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    return np.stack([center[0] + axes[0] * np.cos(a), center[1] + axes[1] * np.sin(a)], axis=1)
