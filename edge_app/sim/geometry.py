"""Small 2-D helpers shared by the hand and face renderers."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def similarity(scale: float, angle_deg: float, center: Tuple[float, float],
               mirror: bool = False) -> np.ndarray:
    """2x3 matrix mapping canonical model units to image pixels. ``mirror`` flips the posed
    model left-right in the image (so a thumb that points up still points up)."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    m = np.array([[c, -s, center[0]], [s, c, center[1]]], dtype=np.float64)
    if mirror:
        m[0, :2] *= -1.0
    return m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an (N, 2) array of points."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def rotate(v: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate 2-D vectors by ``angle_deg`` (image coordinates: y points down)."""
    return apply(similarity(1.0, angle_deg, (0.0, 0.0)), v)


def unit(angle_from_up_deg: float) -> np.ndarray:
    """Unit vector ``angle`` degrees clockwise from straight up (-y)."""
    a = np.deg2rad(angle_from_up_deg)
    return np.array([np.sin(a), -np.cos(a)])


SHIFT = 4  # cv2 drawing with sub-pixel precision: coordinates scaled by 2**SHIFT


def fixed(pts: np.ndarray) -> np.ndarray:
    """Points in cv2's fixed-point format for the ``shift`` argument."""
    return np.round(np.asarray(pts) * (1 << SHIFT)).astype(np.int32)
