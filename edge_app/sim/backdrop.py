"""Backgrounds, lighting and sensor noise for the simulated camera (kept cheap per frame)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random room-like backdrop: a gradient wall with some clutter."""
    import cv2

    c0, c1 = rng.uniform(20, 235, size=(2, 3))
    if rng.random() < 0.5:
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        img = np.broadcast_to(c0 + (c1 - c0) * ramp, (h, w, 3))
    else:
        ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        img = np.broadcast_to(c0 + (c1 - c0) * ramp, (h, w, 3))
    img = np.ascontiguousarray(img, dtype=np.uint8)
    for _ in range(int(rng.integers(2, 9))):
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.6:
            x2, y2 = x + int(rng.integers(10, w // 2)), y + int(rng.integers(10, h // 2))
            cv2.rectangle(img, (x, y), (x2, y2), color, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, max(6, h // 5))), color, -1, cv2.LINE_AA)
    return img


def skin_tone(rng: np.random.Generator) -> Tuple[float, float, float]:
    """A BGR skin colour from light to dark."""
    light = np.array([170.0, 195.0, 235.0])
    dark = np.array([45.0, 70.0, 110.0])
    t = rng.random()
    b, g, r = (float(v) for v in np.clip(light + (dark - light) * t + rng.normal(0, 8, 3), 0, 255))
    return b, g, r


class NoiseBank:
    """Pre-drawn sensor noise; each frame takes a random window, so noise costs one add."""

    def __init__(self, h: int, w: int, sigma: float = 6.0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, sigma, size=(h + 32, w + 32, 3))
        self._pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self.h, self.w = h, w

    def apply(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import cv2

        y, x = int(rng.integers(0, 32)), int(rng.integers(0, 32))
        h, w = img.shape[:2]
        cv2.add(img, self._pos[y:y + h, x:x + w], dst=img)
        cv2.subtract(img, self._neg[y:y + h, x:x + w], dst=img)
        return img


Light = Tuple[Tuple[float, float, float], float]   # per-channel gain (B, G, R), offset


def draw_light(rng: np.random.Generator) -> Light:
    """A room's lighting: global exposure with a colour cast, and an offset."""
    gain = rng.uniform(0.65, 1.3) * rng.uniform(0.88, 1.12, 3)
    return (float(gain[0]), float(gain[1]), float(gain[2])), float(rng.uniform(-20, 20))


def apply_light(img: np.ndarray, light: Light) -> np.ndarray:
    """Apply ``light`` to ``img`` in place."""
    import cv2

    gain, offset = light
    # Scalars (4-tuples) make OpenCV saturate per channel with no temporary image.
    cv2.multiply(img, gain + (0.0,), dst=img)  # type: ignore[call-overload]
    op = cv2.add if offset >= 0 else cv2.subtract
    op(img, (abs(offset),) * 3 + (0.0,), dst=img)  # type: ignore[call-overload]
    return img


def lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Global exposure, a colour cast and an offset drawn afresh, in place."""
    return apply_light(img, draw_light(rng))


def finish(img: np.ndarray, rng: np.random.Generator, noise: Optional[NoiseBank],
           light: Optional[Light] = None) -> np.ndarray:
    """Lighting (``light`` when it is held fixed, else drawn per frame), optional blur and
    noise: what a cheap webcam adds."""
    import cv2

    if light is None:
        lighting(img, rng)
    else:
        apply_light(img, light)
    if rng.random() < 0.25:
        k = 3 if rng.random() < 0.7 else 5
        img = cv2.GaussianBlur(img, (k, k), 0)
    if noise is not None and noise.h >= img.shape[0] and noise.w >= img.shape[1]:
        noise.apply(img, rng)
    return img
