"""A stylised hand: 21 landmarks in MediaPipe's order, posed and drawn with OpenCV.

Canonical model: a right hand, palm towards the camera, wrist at the origin, fingers up (-y),
palm width about one unit. Seen by a camera facing the person, a right hand's thumb is on the
image's right (+x); a mirrored model is a left hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Tuple

import numpy as np

from edge_app.sim.geometry import SHIFT, apply, fixed, similarity, unit

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
LANDMARK_NAMES = ("wrist",) + tuple(
    f"{f}_{j}" for f, joints in (
        ("thumb", ("cmc", "mcp", "ip", "tip")),
        ("index", ("mcp", "pip", "dip", "tip")), ("middle", ("mcp", "pip", "dip", "tip")),
        ("ring", ("mcp", "pip", "dip", "tip")), ("pinky", ("mcp", "pip", "dip", "tip")))
    for j in joints)

# Knuckle (MCP) positions, spread angles (degrees from up), segment lengths, widths.
_MCP = {"index": (0.36, -1.0), "middle": (0.11, -1.08), "ring": (-0.14, -1.03),
        "pinky": (-0.37, -0.9)}
_SPREAD = {"index": 7.0, "middle": 0.0, "ring": -7.0, "pinky": -15.0}
_LENGTHS = {"index": (0.45, 0.28, 0.22), "middle": (0.5, 0.32, 0.24),
            "ring": (0.47, 0.3, 0.22), "pinky": (0.36, 0.22, 0.19)}
_WIDTH = {"thumb": 0.25, "index": 0.2, "middle": 0.21, "ring": 0.19, "pinky": 0.16}
_THUMB_CMC = np.array([0.32, -0.22])
_THUMB_LENGTHS = (0.36, 0.3, 0.26)
_PALM = np.array([(-0.42, 0.12), (0.36, 0.12), (0.5, -0.3), (0.46, -0.98), (0.12, -1.12),
                  (-0.16, -1.07), (-0.45, -0.93), (-0.5, -0.4)])


@dataclass(frozen=True)
class HandPose:
    """Which fingers are extended, where the thumb points, and the hand's base rotation."""

    extended: FrozenSet[str]
    thumb_angle: float = 42.0     # degrees from up, canonical frame
    base_rotation: float = 0.0    # degrees, applied before the random roll


def _fingers(n: int) -> HandPose:
    order = ("index", "middle", "ring", "pinky", "thumb")
    return HandPose(frozenset(order[:n]))


POSES: Dict[str, HandPose] = {
    "thumb_up": HandPose(frozenset({"thumb"}), thumb_angle=90.0, base_rotation=-90.0),
    "thumb_down": HandPose(frozenset({"thumb"}), thumb_angle=90.0, base_rotation=90.0),
    "fist": _fingers(0),
    **{f"fingers_{n}": _fingers(n) for n in range(6)},
}


def landmarks(pose: HandPose) -> np.ndarray:
    """The 21 canonical landmarks (MediaPipe order) for a pose, shape (21, 2)."""
    pts: List[np.ndarray] = [np.zeros(2)]
    if "thumb" in pose.extended:
        d = unit(pose.thumb_angle)
        joints = [_THUMB_CMC]
        for length in _THUMB_LENGTHS:
            joints.append(joints[-1] + length * d)
    else:  # folded across the palm
        joints = [_THUMB_CMC] + [np.array(p) for p in ((0.47, -0.47), (0.3, -0.63), (0.08, -0.68))]
    pts.extend(joints)
    for finger in FINGERS[1:]:
        mcp = np.array(_MCP[finger])
        d = unit(_SPREAD[finger])
        if finger in pose.extended:
            a, b, c = _LENGTHS[finger]
            pts.extend([mcp, mcp + a * d, mcp + (a + b) * d, mcp + (a + b + c) * d])
        else:  # curled over the palm: only the knuckle shows above it, the tip comes back down
            pts.extend([mcp, mcp + 0.1 * d, mcp - 0.06 * d, mcp - 0.2 * d])
    return np.array(pts)


def place(pose: HandPose, scale: float, roll: float, center: Tuple[float, float],
          mirror: bool) -> np.ndarray:
    """2x3 matrix from canonical units to pixels; the hand's centre lands on ``center``."""
    m = similarity(scale, pose.base_rotation + roll, (0.0, 0.0), mirror)
    mid = apply(m, np.array([[0.05, -0.6]]))[0]   # palm centre
    m[:, 2] = np.asarray(center) - mid
    return m


def draw(img: np.ndarray, pose: HandPose, m: np.ndarray, skin: Tuple[float, float, float],
         hide: Iterable[str] = ()) -> Dict[str, object]:
    """Draw the hand; return its landmarks and box in pixels. ``hide`` omits named fingers."""
    import cv2

    hidden = set(hide)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    lm = apply(m, landmarks(pose))
    skin_c = tuple(float(c) for c in skin)
    edge_c = tuple(0.55 * c for c in skin_c)
    fold_c = tuple(0.85 * c for c in skin_c)
    palm = apply(m, _PALM)
    outline = max(1, int(scale * 0.03))
    cv2.fillPoly(img, [fixed(palm)], skin_c, cv2.LINE_AA, SHIFT)
    cv2.polylines(img, [fixed(palm)], True, edge_c, outline, cv2.LINE_AA, SHIFT)
    extents = [palm - (outline / 2.0 + 1.0), palm + (outline / 2.0 + 1.0)]
    # Folded fingers first, so extended ones are drawn over them.
    order = sorted(range(5), key=lambda i: FINGERS[i] in pose.extended)
    for i in order:
        finger = FINGERS[i]
        if finger in hidden:
            continue
        chain = lm[1 + 4 * i: 5 + 4 * i]   # base joint .. tip
        width = max(2, int(round(_WIDTH[finger] * scale)))
        edge = max(2, width // 3)   # the shadow between fingers: what makes them countable
        color = skin_c if finger in pose.extended else fold_c
        pts = fixed(chain)
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(img, tuple(a), tuple(b), edge_c, width + edge, cv2.LINE_AA, SHIFT)
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(img, tuple(a), tuple(b), color, width, cv2.LINE_AA, SHIFT)
        r = (width + edge) / 2.0 + 1.0
        extents.append(np.vstack([chain - r, chain + r]))
    allpts = np.vstack(extents)
    box = (float(allpts[:, 0].min()), float(allpts[:, 1].min()),
           float(allpts[:, 0].max()), float(allpts[:, 1].max()))
    return {"landmarks": lm, "box": box}
