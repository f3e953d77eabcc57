"""The one square, padded crop around a subject that training, export parity, eval and the
live loop all use, and the exact mapping of points between crop and frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from edge_app.opencv import cv2

PAD = 0.25        # margin on each side, as a fraction of the subject box's long side
MIN_SIDE = 16.0   # pixels: a crop never collapses to nothing on a degenerate box


@dataclass(frozen=True)
class CropBox:
    """A square in frame pixels (it may reach past the frame; the border is replicated)."""

    x0: float
    y0: float
    side: float

    def as_list(self) -> list:
        return [round(self.x0, 2), round(self.y0, 2), round(self.side, 2)]


def crop_box(box: Sequence[float], pad: float = PAD) -> CropBox:
    """The square centred on ``box`` (x0, y0, x1, y1 in pixels) with ``pad`` margin."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(MIN_SIDE, max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return CropBox(cx - side / 2.0, cy - side / 2.0, side)


def _matrix(cb: CropBox, out_w: int, out_h: int) -> np.ndarray:
    sx, sy = out_w / cb.side, out_h / cb.side
    return np.array([[sx, 0.0, -cb.x0 * sx], [0.0, sy, -cb.y0 * sy]], dtype=np.float64)


def crop_image(image: np.ndarray, cb: CropBox, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """The crop as an image of ``size`` (height, width); by default its own side in pixels.
    Parts outside the frame repeat the frame's edge, as the detector's border retry does."""
    cv = cv2()
    if size is None:
        n = max(1, int(round(cb.side)))
        size = (n, n)
    h, w = size
    return cv.warpAffine(image, _matrix(cb, w, h), (w, h), flags=cv.INTER_LINEAR,
                         borderMode=cv.BORDER_REPLICATE)


def crop_input(image_bgr: np.ndarray, cb: CropBox, size: Tuple[int, int]) -> np.ndarray:
    """Model input from a crop: ``size`` (height, width), RGB uint8, like ``to_model_input``."""
    cv = cv2()
    return cv.cvtColor(crop_image(image_bgr, cb, size), cv.COLOR_BGR2RGB)


def to_crop(points: np.ndarray, cb: CropBox, frame_size: Tuple[int, int]) -> np.ndarray:
    """Points in 0..1 of the frame (``frame_size`` = width, height) -> 0..1 of the crop."""
    w, h = frame_size
    px = np.asarray(points, dtype=np.float64) * np.array([w, h])
    return (px - np.array([cb.x0, cb.y0])) / cb.side


def from_crop(points: np.ndarray, cb: CropBox, frame_size: Tuple[int, int]) -> np.ndarray:
    """Points in 0..1 of the crop -> 0..1 of the frame; the exact inverse of :func:`to_crop`."""
    w, h = frame_size
    px = np.asarray(points, dtype=np.float64) * cb.side + np.array([cb.x0, cb.y0])
    return px / np.array([w, h])
