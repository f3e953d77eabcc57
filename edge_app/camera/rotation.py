"""Quarter-turn rotations of a camera's picture, in one place.

A rotation here is always *the clockwise turn that makes the picture upright*: ``rotate=90``
on a source URI, ``rotate: 90`` in ``dataset.yaml`` and the camera check's answer all mean
"turn each image clockwise by 90 degrees". Rotation is a property of the camera, never decided
per image (a thumbs-up turned by 180 degrees is a thumbs-down).

Coordinates: image x to the right, y down; normalised points are in 0..1 of the width and
height. Turning an image clockwise by 90 maps a normalised point (x, y) to (1 - y, x).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Sequence, Type

import numpy as np

from edge_app.errors import UserError
from edge_app.opencv import cv2

ROTATIONS = (0, 90, 180, 270)
ACCEPTED = "90, 180 or 270 (clockwise degrees that make the picture upright; 0 for none)"


def parse_rotation(value: Any, where: str, error: Type[UserError] = UserError) -> int:
    """``value`` (text or number) as 0, 90, 180 or 270; anything else is one ``error`` line
    naming ``where`` and the accepted values."""
    text = str(value).strip()
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
    if isinstance(value, bool) or not re.fullmatch(r"-?[0-9]+", text) or int(text) % 360 not in ROTATIONS:
        raise error(f"{where}: rotate {value!r} is not a quarter turn; use {ACCEPTED}")
    return int(text) % 360


def combine(first: int, then: int) -> int:
    """The rotation equal to turning by ``first`` and then by ``then`` (both clockwise)."""
    return (first + then) % 360


def inverse(rotation: int) -> int:
    """The rotation that undoes ``rotation``."""
    return (360 - rotation) % 360


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` turned clockwise by ``rotation`` degrees (a new contiguous array; the image
    itself when ``rotation`` is 0). Lossless: whole pixels move."""
    rotation %= 360
    if rotation == 0:
        return image

    cv = cv2()
    code = {90: cv.ROTATE_90_CLOCKWISE, 180: cv.ROTATE_180,
            270: cv.ROTATE_90_COUNTERCLOCKWISE}[rotation]
    return cv.rotate(image, code)


def rotate_normalized(points: Any, rotation: int) -> np.ndarray:
    """Normalised (x, y) points (any shape ending in 2) as they are after turning the image
    clockwise by ``rotation``."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    rotation %= 360
    if rotation == 90:
        out = np.stack([1.0 - y, x], axis=-1)
    elif rotation == 180:
        out = np.stack([1.0 - x, 1.0 - y], axis=-1)
    elif rotation == 270:
        out = np.stack([y, 1.0 - x], axis=-1)
    else:
        out = p.copy()
    return out


def rotate_pixels(points: Any, size: Sequence[int], rotation: int) -> np.ndarray:
    """Pixel (x, y) points of an image of ``size`` (width, height) as they are after turning
    the image clockwise by ``rotation`` (continuous coordinates: 0..width)."""
    w, h = float(size[0]), float(size[1])
    norm = np.asarray(points, dtype=np.float64) / np.array([w, h])
    turned = rotate_normalized(norm, rotation)
    out_w, out_h = (h, w) if rotation % 180 else (w, h)
    return turned * np.array([out_w, out_h])


def rotate_box(box: Sequence[float], rotation: int) -> list:
    """A normalised box [x0, y0, x1, y1] after turning the image clockwise by ``rotation``."""
    corners = rotate_normalized([[box[0], box[1]], [box[2], box[3]]], rotation)
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return [round(float(v), 5) for v in (x0, y0, x1, y1)]


def turn_subject(subject: Dict[str, Any], rotation: int) -> Dict[str, Any]:
    """A stored subject row (``box`` and ``landmarks`` in 0..1) for the image turned
    clockwise by ``rotation``; its other keys kept."""
    out = dict(subject)
    if "box" in subject:
        out["box"] = rotate_box(subject["box"], rotation)
    if subject.get("landmarks") is not None:
        out["landmarks"] = np.round(rotate_normalized(subject["landmarks"], rotation), 5).tolist()
    return out


def rotate_truth(truth: Optional[Dict[str, Any]], rotation: int) -> Optional[Dict[str, Any]]:
    """Simulator ground truth (normalised: ``subject``, ``subjects``, ``points``) for the image
    turned clockwise by ``rotation``. Handedness is unchanged: a turn is not a mirror."""
    if not truth or rotation % 360 == 0:
        return truth
    out = dict(truth)
    if isinstance(truth.get("subject"), dict):
        out["subject"] = turn_subject(truth["subject"], rotation)
    if isinstance(truth.get("subjects"), list):
        out["subjects"] = [turn_subject(s, rotation) for s in truth["subjects"]]
    if isinstance(truth.get("points"), dict):
        out["points"] = {k: np.round(rotate_normalized(v, rotation), 5).tolist()
                         for k, v in truth["points"].items()}
    return out
