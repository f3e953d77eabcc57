"""The detector's input image and the way back: letterbox (Ultralytics) or plain resize
(jetson-inference's SSD), and boxes from model-input pixels to frame pixels."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from edge_app.opencv import cv2

LETTERBOX_FILL = 114   # Ultralytics' grey


@dataclass(frozen=True)
class InputMap:
    """How a frame became the model input: input = frame * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x0, y0, x1, y1 in model-input pixels -> frame pixels."""
        out = np.asarray(boxes, np.float64).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale_y
        return out


def letterbox(image: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, InputMap]:
    """``image`` scaled to fit ``size`` (height, width) keeping its aspect ratio, centred on
    grey: what Ultralytics models are trained on."""
    h, w = image.shape[:2]
    th, tw = size
    scale = min(th / h, tw / w)
    nh, nw = int(round(h * scale)), int(round(w * scale))
    resized = cv2().resize(image, (nw, nh), interpolation=cv2().INTER_LINEAR)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = np.full((th, tw, 3), LETTERBOX_FILL, np.uint8)
    out[top:top + nh, left:left + nw] = resized
    return out, InputMap(nw / w, nh / h, float(left), float(top))


def stretch(image: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, InputMap]:
    """``image`` resized to ``size`` (height, width), aspect ratio not kept: what SSD-Mobilenet
    from pytorch-ssd is trained on."""
    h, w = image.shape[:2]
    th, tw = size
    out = cv2().resize(image, (tw, th), interpolation=cv2().INTER_LINEAR)
    return out, InputMap(tw / w, th / h, 0.0, 0.0)


def clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.asarray(boxes, np.float64).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
