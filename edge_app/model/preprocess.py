"""The one resize that training, export parity and the live loop all use to feed a model."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from edge_app.opencv import cv2


def to_model_input(image_bgr: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize a BGR frame to ``size`` (height, width) and return it as RGB uint8 (HWC).
    Normalisation is not done here: it lives inside the model (and its exported graph)."""
    cv = cv2()
    h, w = size
    image = image_bgr
    # Halve with area averaging while the frame is at least twice the input (exact 2x area
    # averaging is OpenCV's fast path: 640x480 -> 224 costs 0.2 ms instead of 2.5 ms for a
    # direct INTER_AREA resize), then a bilinear step of less than 2x, which does not alias.
    while image.shape[0] >= 2 * h and image.shape[1] >= 2 * w:
        image = cv.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv.INTER_AREA)
    if image.shape[:2] != (h, w):
        image = cv.resize(image, (w, h), interpolation=cv.INTER_LINEAR)
    return cv.cvtColor(image, cv.COLOR_BGR2RGB)
