"""The one resize that training, export parity and the live loop all use to feed a model."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from edge_app.cv import cv2


def to_model_input(image_bgr: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize a BGR frame to ``size`` (height, width) and return it as RGB uint8 (HWC).
    Normalisation is not done here: it lives inside the model (and its exported graph)."""
    cv = cv2()
    h, w = size
    shrinking = image_bgr.shape[0] > h or image_bgr.shape[1] > w
    resized = cv.resize(image_bgr, (w, h), interpolation=cv.INTER_AREA if shrinking else cv.INTER_LINEAR)
    return cv.cvtColor(resized, cv.COLOR_BGR2RGB)
