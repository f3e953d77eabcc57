"""The built-in detectors (``--model hands``, ``--model faces``): every hand or face in the
frame, from the simulator's ground truth where the frame carries it (``auto``) or from
MediaPipe (Hands, up to ``max_hands``; BlazeFace full-range for faces). They answer in the
``subjects`` layout (x0, y0, x1, y1, score, class per row, frame pixels), so decoding,
drawing, tracking and JSON are those of any detector. The ``mediapipe`` entry of
:data:`edge_app.backends.BACKENDS`; imported only when used."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from edge_app.backends.base import Backend, BackendOptions, Batch
from edge_app.detect.loading import BUILTIN_BACKEND, OUTPUT
from edge_app.errors import UserError
from edge_app.opencv import cv2
from edge_app.subject.base import RETRY_BORDER, with_border
from edge_app.subject.mediapipe_finder import import_mediapipe

if TYPE_CHECKING:   # annotations only: edge_app.model.info imports this package
    from edge_app.model.info import ModelInfo

MAX_HANDS = 4
RETRY_EVERY = 5   # an empty scene retries with the border on every 5th frame only


def subjects_in_truth(truth: Optional[Dict[str, Any]], kind: str, size: Any) -> Optional[np.ndarray]:
    """The simulator's subjects of ``kind`` as detection rows, or None without ground truth."""
    if not truth or not (truth.get("subjects") or truth.get("subject")):
        return None
    w, h = size
    rows = [[b[0] * w, b[1] * h, b[2] * w, b[3] * h, 1.0, 0.0]
            for s in truth.get("subjects") or [truth["subject"]] if s.get("kind") == kind
            for b in [s["box"]]]
    return np.asarray(rows, np.float32).reshape(-1, 6)


class SubjectsBackend(Backend):
    """Runs a built-in detector. ``provider``: ``auto`` (ground truth on simulated frames,
    else MediaPipe), ``mediapipe`` or ``truth``."""

    name = BUILTIN_BACKEND

    def __init__(self, threads: Optional[int] = None, provider: str = "auto",
                 tracking: bool = True, retry: bool = True) -> None:
        self.provider, self.tracking, self.retry = provider, tracking, retry
        self.kind = ""
        self.model: Any = None
        self.misses = 0

    @classmethod
    def create(cls, threads: Optional[int] = None,
               options: Optional[BackendOptions] = None) -> SubjectsBackend:
        """With the run's subject provider and tracking setting."""
        options = options or BackendOptions()
        return cls(threads, options.subject_provider, options.tracking)

    def load(self, model: ModelInfo) -> None:
        if model.runs_on != self.name:
            raise UserError("the mediapipe backend only runs the built-in detectors (hands, faces)")
        if self.provider not in ("auto", "mediapipe", "truth"):
            raise UserError(f"--subject-provider {self.provider} cannot detect; use auto, mediapipe or truth"
                            )
        self.kind = model.labels[0]
        if self.provider != "truth":
            self._open()

    def _open(self) -> None:
        sol = import_mediapipe().solutions
        if self.kind == "hand":
            self.model = sol.hands.Hands(static_image_mode=not self.tracking, max_num_hands=MAX_HANDS,
                                         model_complexity=1, min_detection_confidence=0.5)
        else:
            self.model = sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    def detect(self, image: np.ndarray, batch: Batch,
               truth: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
        """The frame itself is the input (``batch`` is only that frame); see :meth:`find`."""
        return self.find(image, truth)

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
        """Detection rows for one BGR frame (ground truth first where allowed and present)."""
        h, w = image.shape[:2]
        rows = subjects_in_truth(truth, self.kind, (w, h)) if self.provider != "mediapipe" else None
        if rows is None and self.model is not None:
            rows = self._search(image)
        return {OUTPUT: (np.zeros((0, 6), np.float32) if rows is None else rows)[None]}

    def _search(self, image: np.ndarray) -> np.ndarray:
        """MediaPipe on the frame; on a miss (spaced out while nothing is in view) again inside
        a replicated border, for a subject that fills the frame."""
        rows = self._run(image)
        if not len(rows) and self.retry and self.misses % RETRY_EVERY == 0:
            padded, pad = with_border(image, RETRY_BORDER)
            rows = self._run(padded)
            if len(rows):
                rows[:, :4] -= pad
                rows[:, [0, 2]] = rows[:, [0, 2]].clip(0, image.shape[1])
                rows[:, [1, 3]] = rows[:, [1, 3]].clip(0, image.shape[0])
        self.misses = 0 if len(rows) else self.misses + 1
        return rows

    def _run(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        out = self.model.process(cv2().cvtColor(image, cv2().COLOR_BGR2RGB))
        rows: List[List[float]] = []
        if self.kind == "hand":
            for lm, side in zip(out.multi_hand_landmarks or [], out.multi_handedness or []):
                pts = np.array([(p.x * w, p.y * h) for p in lm.landmark])
                rows.append([*pts.min(axis=0), *pts.max(axis=0), side.classification[0].score, 0.0])
        else:
            for d in out.detections or []:
                b = d.location_data.relative_bounding_box
                rows.append([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h,
                             d.score[0], 0.0])
        return np.asarray(rows, np.float32).reshape(-1, 6)

    def infer(self, batch: Batch) -> np.ndarray:
        return self.infer_all(batch)[OUTPUT]   # (1, K, 6)

    def infer_all(self, batch: Batch) -> Dict[str, np.ndarray]:
        """``batch``: one frame as (1, H, W, 3) BGR (what :meth:`Detector.prepare` makes)."""
        frames = batch if isinstance(batch, np.ndarray) else batch[0]
        return self.find(frames[0])

    def describe(self) -> str:
        if self.provider == "truth":
            return "simulator truth"
        mode = "tracking" if self.tracking and self.kind == "hand" else "per frame"
        return "mediapipe ({}{})".format(mode, "; truth on sim://" if self.provider == "auto" else "")

    def close(self) -> None:
        if self.model is not None:
            self.model.close()
        self.model = None
