"""The registry of simulated scenes: what each can draw, and one frame renderer for all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge_app.registry import Registry
from edge_app.sim import face, hand
from edge_app.sim.backdrop import Light, NoiseBank, background, finish, skin_tone

Drawer = Callable[[np.ndarray, str, np.random.Generator, Iterable[str]], Dict[str, Any]]


@dataclass(frozen=True)
class Scene:
    """A renderable subject: its poses, its landmark names and a function that draws it."""

    name: str
    poses: Tuple[str, ...]
    landmark_names: Tuple[str, ...]
    draw: Drawer

    def check(self, labels_key: str, labels: Sequence[str], mapping: Mapping[str, str]) -> str:
        """Problem with a task's sim mapping for this scene, or ``""``."""
        if labels_key == "points":
            missing = [p for p in labels if p not in self.landmark_names]
            if missing:
                return "point '{}' is not drawn by the {} scene; it draws {}".format(
                    missing[0], self.name, ", ".join(self.landmark_names))
            return ""
        unmapped = [c for c in labels if c not in mapping]
        if unmapped:
            return "no pose for class '{}'; map every class to one of: {}".format(
                unmapped[0], ", ".join(self.poses))
        extra = [c for c in mapping if c not in labels]
        if extra:
            return f"'{extra[0]}' is not one of the task's classes"
        bad = [p for p in mapping.values() if p not in self.poses]
        if bad:
            return "'{}' is not a {} pose; poses are {}".format(bad[0], self.name, ", ".join(self.poses))
        return ""


def _fit_center(rng: np.random.Generator, h: int, w: int, radius: float) -> Tuple[float, float]:
    """A random centre that keeps a subject of ``radius`` pixels inside the frame."""
    return (float(rng.uniform(radius, w - radius)), float(rng.uniform(radius, h - radius)))


def _draw_hand(img: np.ndarray, pose: str, rng: np.random.Generator,
               hide: Iterable[str]) -> Dict[str, Any]:
    h, w = img.shape[:2]
    # Framed as in the course's captures: the hand held up close, 45-60% of the frame's height.
    scale = float(rng.uniform(0.21, 0.28)) * min(h, w)
    p = hand.POSES[pose]
    m = hand.place(p, scale, float(rng.uniform(-20, 20)), _fit_center(rng, h, w, 1.75 * scale),
                   mirror=bool(rng.random() < 0.5))
    out = hand.draw(img, p, m, skin_tone(rng), hide)
    out["handedness"] = "left" if np.linalg.det(m[:, :2]) < 0 else "right"
    return out


def _draw_face(img: np.ndarray, pose: str, rng: np.random.Generator,
               hide: Iterable[str]) -> Dict[str, Any]:
    h, w = img.shape[:2]
    scale = float(rng.uniform(0.22, 0.32)) * min(h, w)
    m = face.place(scale, float(rng.uniform(-15, 15)), _fit_center(rng, h, w, 1.45 * scale))
    r, g, b = (float(v) for v in rng.uniform(10, 90, 3))
    return face.draw(img, face.POSES[pose], m, float(rng.uniform(-0.5, 0.5)), skin_tone(rng),
                     (r, g, b), hide)


SCENES: Registry[Scene] = Registry("simulated scene", {
    "hand": Scene("hand", tuple(hand.POSES), hand.LANDMARK_NAMES, _draw_hand),
    "face": Scene("face", tuple(face.POSES), face.LANDMARK_NAMES, _draw_face),
}.items())


def render(scene: Scene, pose: str, rng: np.random.Generator, size: Tuple[int, int],
           clean: bool = False, hide: Iterable[str] = (),
           noise: Optional[NoiseBank] = None, backdrop: Optional[np.ndarray] = None,
           light: Optional[Light] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Render one frame of ``size`` (width, height); return the BGR image and the subject's
    ground truth in pixels (box, landmarks). ``clean`` draws on black with no lighting or noise;
    ``backdrop`` (an HxWx3 image, copied) and ``light`` hold the room and its lighting fixed
    instead of drawing new ones each frame."""
    w, h = size
    if clean:
        img = np.zeros((h, w, 3), np.uint8)
    elif backdrop is not None:
        img = backdrop.copy()
    else:
        img = background(rng, h, w)
    subject = scene.draw(img, pose, rng, hide)
    if not clean:
        img = finish(img, rng, noise, light)
    return img, subject
