"""MediaPipe Hands and Face Mesh (the legacy ``solutions`` API, whose models ship inside the
wheel, so nothing is fetched at run time). Imported only when used."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from edge_app.errors import UserError
from edge_app.log import NativeStderr
from edge_app.opencv import cv2
from edge_app.subject.base import Attempt, Subject, SubjectFinder, hard_attempts

# For labelled stills only (find_hard): measured on the real photos in ../shared/data, 0.2
# finds 26 of the 28 hands that 0.5 misses among 1146 (the rest stay missed), and still finds
# no hand in photos without one.
HARD_CONFIDENCE = 0.2

INSTALL = ("the subject stage needs MediaPipe (installed without its pip OpenCV): run "
           "'python -m edge_app.subject.install', or pass --subject-provider whole (or "
           "--input frame when training)")


def import_mediapipe() -> Any:
    """The mediapipe module, or one line saying how to install it."""
    import os

    # MediaPipe's C++ logging would print several lines per model load to the terminal.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp

        _ = mp.solutions.hands
    except (ImportError, AttributeError) as exc:
        raise UserError(f"{INSTALL} ({str(exc).splitlines()[0] if str(exc) else exc})")
    return mp


def mediapipe_available() -> bool:
    try:
        import_mediapipe()
    except UserError:
        return False
    return True


class MediaPipeFinder(SubjectFinder):
    """One hand (21 landmarks) or one face (468 landmarks). With ``tracking`` MediaPipe runs
    its detector only when it has lost the subject and otherwise follows the landmarks from
    the previous frame; without it, every image is searched afresh."""

    name = "mediapipe"

    def __init__(self, kind: str, tracking: bool = False, min_confidence: float = 0.5) -> None:
        super().__init__(kind, tracking)
        self._mp = import_mediapipe()
        self._min = min_confidence
        self._models: Dict[Tuple[bool, float], Any] = {}
        self._quiet = NativeStderr()

    def _open(self, static: bool, confidence: float) -> Any:
        sol = self._mp.solutions
        if self.kind == "hand":
            return sol.hands.Hands(static_image_mode=static, max_num_hands=1, model_complexity=1,
                                   min_detection_confidence=confidence,
                                   min_tracking_confidence=confidence)
        return sol.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1,
                                      min_detection_confidence=confidence,
                                      min_tracking_confidence=confidence)

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        return self._run(image, static=not self.tracking)

    def find_again(self, image: np.ndarray) -> Optional[Subject]:
        # A fresh search that leaves the tracker's state alone (the retry's bordered image
        # is not the next video frame).
        return self._run(image, static=True)

    def attempts(self, image: np.ndarray) -> Iterator[Attempt]:
        # A lower detection threshold, on the image and inside a wider border than the retry's;
        # then the same on the image with its colour and exposure corrected, denoised, enlarged,
        # and in windows (base.hard_attempts: what odd cameras need), mapped back.
        return hard_attempts(self.find_weak, image)

    def find_weak(self, image: np.ndarray) -> Optional[Subject]:
        """A fresh search that accepts weaker detections (the hard search's threshold)."""
        return self._run(image, static=True, confidence=min(self._min, HARD_CONFIDENCE))

    def _run(self, image: np.ndarray, static: bool, confidence: Optional[float] = None) -> Optional[Subject]:
        key = (static, self._min if confidence is None else confidence)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = self._open(*key)
        with self._quiet:   # MediaPipe's native lines (graph start, first tracked frame)
            out = model.process(cv2().cvtColor(image, cv2().COLOR_BGR2RGB))
        found = (getattr(out, "multi_hand_landmarks", None) if self.kind == "hand"
                 else getattr(out, "multi_face_landmarks", None))
        if not found:
            return None
        h, w = image.shape[:2]
        lm = np.array([(p.x * w, p.y * h) for p in found[0].landmark], dtype=np.float64)
        box = (float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max()))
        score, side = 1.0, None
        if self.kind == "hand" and out.multi_handedness:
            cls = out.multi_handedness[0].classification[0]
            # MediaPipe assumes a mirrored selfie image; for an unmirrored camera its "Left"
            # is the person's right hand.
            score, side = float(cls.score), ("right" if cls.label == "Left" else "left")
        return Subject(self.kind, box, lm, score, self.name, side)

    def reset(self) -> None:
        for model in self._models.values():
            model.close()
        self._models.clear()

    def close(self) -> None:
        self.reset()
        self._quiet.close()
