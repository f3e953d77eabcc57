"""Landmark features: a subject's landmarks in a frame of its own, free of where it is in the
image, how big, how turned and which hand, so that a small model learns the gesture only.

Schemas (the points a model reads), whichever provider found the subject:
  hand       the 21 MediaPipe hand points (the simulator uses the same order);
  face_mesh  152 of MediaPipe Face Mesh's 468 points: lips, eyes, brows, nose and the face's
             outline, so that a point model can learn a dataset's own convention (where it puts
             "the nose") and an expression model can see brows and mouth;
  face       five points, the subject's own sides: left_eye, right_eye, nose, mouth_left,
             mouth_right; the simulator's faces (which have no mesh) and older models. A mesh
             face feeds a five-point model too (the five are taken from the mesh).

Hands: the wrist is the origin, wrist -> middle-finger base points up and has length 1, and the
thumb is always on the +x side (a left hand, or a right hand seen from the back, is mirrored to
look like the same gesture). Faces: the eyes' midpoint is the origin, the eye line is
horizontal with length 1 (no mirroring: left and right are the person's).

What that normalisation removes, some tasks need: a thumb up and a thumb down are the same
hand shape turned over. Two more blocks keep it: the direction of the subject's own "up" (or eye
line) in the image, as a unit vector, and the same points again upright, i.e. only moved,
scaled and mirrored, not turned (both mirrored with the hand). The upright points matter: with
the orientation alone a model trained on one person learns "hand axis points left = thumbs up"
and fails for someone who holds the fist the other way round; the upright thumb points down
whatever the grip. Measured (thumbs, one person -> the two others, mean of three, five seeds):
91.6% with local points and orientation, 97.2% with the upright points added.

Hands then get what the counting rule reads, computed from the local points so that it carries
across people (a hand's proportions vary; its joint angles much less): each finger's three
joint bends, how far each tip reaches relative to its middle joint (the thumb's measured from
the little finger's base), tips from the palm's centre, the thumb tip from the index and middle
bases, the thumb's direction in the hand's own frame and upright, and neighbouring tips apart.

Feature layout (``feature_size``, ``LANDMARK_LAYOUT`` 2 in edge_app.model.inputs): local points
(2P), orientation (2), upright points (2P), derived measures (hands: 36, faces: none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from edge_app.subject.base import Subject

SCHEMA_POINTS = {"hand": 21, "face": 5, "face_mesh": 152}
SCHEMA_KIND = {"hand": "hand", "face": "face", "face_mesh": "face"}
FACE_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Face Mesh indices; "left" is the subject's own left (the image's right for a facing camera).
FACE_MESH: Dict[str, List[int]] = {
    "left_eye": [362, 385, 387, 263, 373, 380], "right_eye": [33, 160, 158, 133, 153, 144],
    "nose": [1], "mouth_left": [291], "mouth_right": [61]}
# MediaPipe's FACEMESH_LIPS, _LEFT_EYE, _LEFT_EYEBROW, _RIGHT_EYE, _RIGHT_EYEBROW, _FACE_OVAL
# and _NOSE connection sets, as sorted point indices (written out: no mediapipe import here).
MESH_POINTS: Tuple[int, ...] = tuple(sorted({
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,
    269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
    276, 282, 283, 285, 293, 295, 296, 300, 334, 336,
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
    46, 52, 53, 55, 63, 65, 66, 70, 105, 107,
    10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251,
    284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454,
    1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327,
    344, 440}))
WRIST, THUMB_MCP, MIDDLE_MCP = 0, 2, 9
FINGER_TIPS = (4, 8, 12, 16, 20)
FINGERS = tuple(tuple([WRIST] + list(range(1 + 4 * f, 5 + 4 * f))) for f in range(5))  # wrist..tip
# The hand measures' blocks, in order (:func:`hand_measures`), and their widths.
HAND_MEASURES = (("bends", 15), ("reach", 5), ("palm", 5), ("thumb_bases", 3), ("thumb_dir", 2),
                 ("thumb_upright", 2), ("tips_apart", 4))
HAND_DERIVED = sum(width for _, width in HAND_MEASURES)


@dataclass(frozen=True)
class LocalFrame:
    """Maps frame pixels to the subject's own coordinates and back."""

    origin: Tuple[float, float]
    scale: float
    angle: float      # radians: rotation applied after translating
    mirror: bool

    def _rot(self) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.array([[c, -s], [s, c]])

    def to_local(self, px: np.ndarray) -> np.ndarray:
        local = (np.asarray(px, np.float64) - np.array(self.origin)) @ self._rot().T / self.scale
        if self.mirror:
            local = local * np.array([-1.0, 1.0])
        return local

    def to_pixels(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, np.float64)
        if self.mirror:
            local = local * np.array([-1.0, 1.0])
        return local * self.scale @ self._rot() + np.array(self.origin)


def canonical_points(subject: Subject) -> Optional[np.ndarray]:
    """The subject kind's basic points (pixels: 21 for a hand, the five for a face) from
    whatever the provider gave, or None."""
    lm = subject.landmarks
    if lm is None:
        return None
    n = SCHEMA_POINTS.get(subject.kind)
    if n is not None and len(lm) == n:
        return np.asarray(lm, np.float64)
    if subject.kind == "face" and len(lm) >= 468:
        return np.array([lm[FACE_MESH[name]].mean(axis=0) for name in FACE_NAMES])
    return None


def schema_points(subject: Subject, schema: str) -> Optional[np.ndarray]:
    """The points of ``schema`` (pixels) the subject provides, or None when it cannot (a
    simulated five-point face has no mesh)."""
    if SCHEMA_KIND.get(schema) != subject.kind:
        return None
    if schema == "face_mesh":
        lm = subject.landmarks
        return None if lm is None or len(lm) < 468 else np.asarray(lm, np.float64)[list(MESH_POINTS)]
    return canonical_points(subject)


def schema_of(subject: Optional[Subject]) -> Optional[str]:
    """The richest schema the subject provides (None: no usable landmarks)."""
    if subject is None or subject.landmarks is None:
        return None
    if subject.kind == "face" and len(subject.landmarks) >= 468:
        return "face_mesh"
    return subject.kind if canonical_points(subject) is not None else None


def choose_schema(kind: str, subjects: Iterable[Optional[Subject]]) -> str:
    """The schema to train on: the richest that most of the found subjects provide."""
    counts: Dict[str, int] = {}
    for s in subjects:
        name = schema_of(s)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return kind
    return max(counts, key=lambda k: (counts[k], SCHEMA_POINTS[k]))


def eye_distance(subject: Optional[Subject]) -> Optional[float]:
    """The distance between a face's eye centres in pixels (None for hands or no landmarks):
    the unit of the normalised mean error (NME) where a dataset does not label the eyes."""
    if subject is None or subject.kind != "face":
        return None
    points = canonical_points(subject)
    if points is None:
        return None
    left, right = points[FACE_NAMES.index("left_eye")], points[FACE_NAMES.index("right_eye")]
    return float(np.hypot(*(left - right))) or None


def local_frame(points: np.ndarray, kind: str) -> Optional[LocalFrame]:
    """The subject's own frame for its canonical points; None when degenerate."""
    if kind == "hand":
        origin, up = points[WRIST], points[MIDDLE_MCP] - points[WRIST]
        scale = float(np.hypot(*up))
        # Rotate so that ``up`` becomes (0, -1): image y grows downwards.
        angle = -np.pi / 2 - np.arctan2(up[1], up[0])
    else:
        left, right = points[FACE_NAMES.index("left_eye")], points[FACE_NAMES.index("right_eye")]
        origin, across = (left + right) / 2.0, left - right
        scale = float(np.hypot(*across))
        angle = -np.arctan2(across[1], across[0])
    if scale < 1e-6:
        return None
    frame = LocalFrame((float(origin[0]), float(origin[1])), scale, float(angle), False)
    if kind == "hand" and frame.to_local(points[THUMB_MCP:THUMB_MCP + 1])[0, 0] < 0:
        frame = LocalFrame(frame.origin, frame.scale, frame.angle, True)
    return frame


def orientation(frame: LocalFrame) -> np.ndarray:
    """The image direction that the local frame calls +y (hands) or +x (faces), as a unit
    vector, with x mirrored as the points are."""
    v = frame.to_pixels(np.array([[0.0, -1.0], [0.0, 0.0]]))
    d = (v[0] - v[1]) / frame.scale
    return d * np.array([-1.0, 1.0]) if frame.mirror else d


def landmark_features(subject: Optional[Subject], schema: Optional[str] = None
                      ) -> Optional[Tuple[np.ndarray, LocalFrame]]:
    """The model input (float32, laid out as :func:`join_features` says) for ``schema`` (by
    default the richest the subject provides) and its frame, or None."""
    if subject is None:
        return None
    schema = schema or schema_of(subject)
    if schema is None:
        return None
    base, points = canonical_points(subject), schema_points(subject, schema)
    if base is None or points is None:
        return None
    frame = local_frame(base, subject.kind)
    if frame is None:
        return None
    return join_features(frame.to_local(points)[None], orientation(frame)[None], schema)[0], frame


def upright_points(local: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Local points (N, P, 2) turned back the way the subject is turned in the image: the
    rotation that takes the local "up" (0, -1) to the orientation ``turn`` (N, 2)."""
    ox, oy = turn[:, 0], turn[:, 1]
    rot = np.stack([np.stack([-oy, -ox], -1), np.stack([ox, -oy], -1)], -2)   # (N, 2, 2)
    return np.einsum("nij,npj->npi", rot, local)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-6)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def hand_measures(local: np.ndarray, upright: np.ndarray) -> np.ndarray:
    """(N, 36) measures of hands from their local (N, 21, 2) and upright points: joint bends
    (cosines), reach ratios (log), tips from the palm, thumb tip from the index and middle
    bases, the thumb's direction in both frames, neighbouring tips apart."""
    out = []
    for chain in FINGERS:
        seg = _unit(np.diff(local[:, list(chain)], axis=1))              # (N, 4, 2)
        out.append((seg[:, :-1] * seg[:, 1:]).sum(-1))                  # 3 bends
    wrist, pinky_base = local[:, WRIST], local[:, 17]
    reach = [_dist(local[:, 4], pinky_base) / np.maximum(_dist(local[:, 3], pinky_base), 1e-3)]
    reach += [_dist(local[:, tip], wrist) / np.maximum(_dist(local[:, tip - 2], wrist), 1e-3)
              for tip in FINGER_TIPS[1:]]
    out.append(np.log(np.clip(np.stack(reach, -1), 0.05, 20.0)))
    palm = local[:, [0, 5, 9, 13, 17]].mean(axis=1, keepdims=True)
    out.append(_dist(local[:, list(FINGER_TIPS)], palm))
    out.append(_dist(local[:, 4:5], local[:, [5, 6, 9]]))
    out.append(_unit(local[:, 4] - local[:, 2]))
    out.append(_unit(upright[:, 4] - upright[:, 2]))
    out.append(_dist(local[:, list(FINGER_TIPS[:-1])], local[:, list(FINGER_TIPS[1:])]))
    return np.concatenate(out, axis=1)


def measure_columns(block: str) -> List[int]:
    """The columns of hand features (``feature_size("hand")`` wide) that hold ``block`` of
    :data:`HAND_MEASURES`."""
    start = 4 * SCHEMA_POINTS["hand"] + 2
    for name, width in HAND_MEASURES:
        if name == block:
            return list(range(start, start + width))
        start += width
    raise KeyError(block)


def upright_columns(point: int, schema: str = "hand") -> List[int]:
    """The two columns (x, y) of ``point`` in the features' upright block."""
    start = 2 * SCHEMA_POINTS[schema] + 2 + 2 * point
    return [start, start + 1]


def feature_size(schema: str) -> int:
    return 4 * SCHEMA_POINTS[schema] + 2 + (HAND_DERIVED if schema == "hand" else 0)


def schema_for_width(kind: str, width: int) -> Optional[str]:
    """The schema of ``kind`` whose features are ``width`` wide (bundles record the width)."""
    return next((s for s, k in SCHEMA_KIND.items() if k == kind and feature_size(s) == width), None)


def split_features(x: np.ndarray, schema: str) -> Tuple[np.ndarray, np.ndarray]:
    """(N, F) features -> local points (N, P, 2) and orientation (N, 2); the other blocks
    follow from them (:func:`join_features`)."""
    n = SCHEMA_POINTS[schema]
    return x[:, :2 * n].reshape(len(x), n, 2), x[:, 2 * n:2 * n + 2]


def join_features(local: np.ndarray, turn: np.ndarray, schema: str) -> np.ndarray:
    """Inverse of :func:`split_features`: the upright block and the measures recomputed."""
    upright = upright_points(local, turn)
    blocks = [local.reshape(len(local), -1), turn, upright.reshape(len(local), -1)]
    if schema == "hand":
        blocks.append(hand_measures(local, upright))
    return np.concatenate(blocks, axis=1).astype(np.float32)


# -- suggestions for pre-labelling (no training: rules on the landmarks) -------------------
def extended_fingers(subject: Subject) -> Optional[int]:
    """How many fingers are raised: a finger is extended when its tip is farther from the
    wrist than its middle joint; the thumb when its tip is farther from the little finger's
    base than its own middle joint."""
    pts = canonical_points(subject) if subject.kind == "hand" else None
    if pts is None:
        return None
    wrist = pts[WRIST]
    count = 0
    for tip in FINGER_TIPS[1:]:
        if np.linalg.norm(pts[tip] - wrist) > np.linalg.norm(pts[tip - 2] - wrist) * 1.1:
            count += 1
    pinky_base = pts[17]
    if np.linalg.norm(pts[4] - pinky_base) > np.linalg.norm(pts[3] - pinky_base) * 1.05:
        count += 1
    return count


def thumb_direction(subject: Subject) -> Optional[str]:
    """'up' or 'down' when the thumb points clearly up or down in the image, else None. The
    thumb runs from its base (CMC, point 1) to its tip: from the MCP (point 2), a thumb bent
    at its base read as sideways (real thumbs photos: 72% right, 27% undecided; from the CMC
    80%, 20%)."""
    pts = canonical_points(subject) if subject.kind == "hand" else None
    if pts is None:
        return None
    v = pts[4] - pts[1]
    size = np.linalg.norm(pts[MIDDLE_MCP] - pts[WRIST]) or 1.0
    if abs(v[1]) < 0.5 * size or abs(v[1]) < abs(v[0]):
        return None
    return "up" if v[1] < 0 else "down"
