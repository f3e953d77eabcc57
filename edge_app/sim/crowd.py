"""The crowd scene: several hands and faces in one frame, each in its own cell of a 3x2 grid
(so they never overlap), with every subject's box and landmarks as ground truth. What
detection accuracy (precision and recall at IoU 0.5) is measured on."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.sim import face, hand
from edge_app.sim.backdrop import NoiseBank, background, finish, skin_tone

GRID = (3, 2)   # columns, rows


def render_crowd(rng: np.random.Generator, size: Tuple[int, int], clean: bool = False,
                 noise: Optional[NoiseBank] = None) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """One frame of ``size`` (width, height) with 1-3 faces and 0-3 hands; the BGR image and
    each subject's kind, box and landmarks in pixels."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8) if clean else background(rng, h, w)
    cells = [(c, r) for c in range(GRID[0]) for r in range(GRID[1])]
    order = rng.permutation(len(cells))
    faces, hands = int(rng.integers(1, 4)), int(rng.integers(0, 4))
    cw, ch = w / GRID[0], h / GRID[1]
    subjects = []
    for i, kind in enumerate(["face"] * faces + ["hand"] * hands):
        col, row = cells[order[i]]
        subjects.append(_draw(img, kind, rng, (col * cw, row * ch, cw, ch)))
    if not clean:
        img = finish(img, rng, noise)
    return img, subjects


def _draw(img: np.ndarray, kind: str, rng: np.random.Generator,
          cell: Tuple[float, float, float, float]) -> Dict[str, Any]:
    """One subject inside ``cell`` (x, y, width, height), kept inside it."""
    x, y, cw, ch = cell
    short = min(cw, ch)
    if kind == "face":
        scale = float(rng.uniform(0.22, 0.3)) * short
        center = _inside(rng, cell, 1.45 * scale)
        m = face.place(scale, float(rng.uniform(-15, 15)), center)
        pose = face.POSES[list(face.POSES)[int(rng.integers(len(face.POSES)))]]
        hair = tuple(float(v) for v in rng.uniform(10, 90, 3))
        out = face.draw(img, pose, m, float(rng.uniform(-0.5, 0.5)), skin_tone(rng), hair)  # type: ignore[arg-type]
    else:
        scale = float(rng.uniform(0.2, 0.26)) * short
        p = hand.POSES[list(hand.POSES)[int(rng.integers(len(hand.POSES)))]]
        m = hand.place(p, scale, float(rng.uniform(-20, 20)), _inside(rng, cell, 1.75 * scale),
                       mirror=bool(rng.random() < 0.5))
        out = hand.draw(img, p, m, skin_tone(rng))
    return {"kind": kind, "box": out["box"], "landmarks": out["landmarks"]}


def _inside(rng: np.random.Generator, cell: Tuple[float, float, float, float],
            radius: float) -> Tuple[float, float]:
    x, y, cw, ch = cell
    rx, ry = min(radius, cw / 2), min(radius, ch / 2)
    return float(rng.uniform(x + rx, x + cw - rx)), float(rng.uniform(y + ry, y + ch - ry))
