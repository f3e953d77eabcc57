"""Track ids for detections, so that labels and counts don't flicker from frame to frame:
norfair (Tryolabs), matched on box IoU, with a Kalman filter per track. Chosen over
supervision's ByteTrack and Roboflow's trackers because it needs no pip OpenCV (which would
shadow JetPack's cv2) and still installs on JetPack 5's Python 3.8. Imported only when used."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edge_app.errors import UserError
from edge_app.model.results import DetectionsResult

INSTALL = ("--track needs norfair: python -m edge_app.subject.install (or pip install norfair "
           "where numpy < 2)")


class Tracker:
    """Ids for the detections of one model over a stream. A detection is shown once it
    belongs to a track: a box seen in one frame only (a false positive, usually) is not;
    a track survives ``patience`` frames without a detection."""

    def __init__(self, iou: float = 0.3, patience: int = 15, confirm: int = 1) -> None:
        try:
            import norfair
        except ImportError as exc:
            raise UserError(f"{INSTALL} ({exc})")
        self._norfair = norfair
        # norfair's "iou" distance is 1 - IoU: a match needs IoU above ``iou``.
        self._tracker = norfair.Tracker(distance_function="iou", distance_threshold=1.0 - iou,
                                        hit_counter_max=patience, initialization_delay=confirm)

    def update(self, result: DetectionsResult) -> DetectionsResult:
        """``result`` with the tracked detections only, each with its track id."""
        made = [self._norfair.Detection(box.reshape(2, 2).astype(np.float64),
                                        scores=np.array([s, s], np.float64), label=int(c),
                                        data=i)
                for i, (box, s, c) in enumerate(zip(result.boxes, result.scores, result.class_ids))]
        tracked = self._tracker.update(made)
        # A track's last detection is this frame's when it was matched now.
        now = {id(d) for d in made}
        pairs = sorted((o.last_detection.data, o.id) for o in tracked if id(o.last_detection) in now)
        keep = np.array([i for i, _ in pairs], np.int64)
        return _subset(result, keep, np.array([t for _, t in pairs], np.int64))


def _subset(result: DetectionsResult, keep: np.ndarray, ids: Any) -> DetectionsResult:
    return replace(result, boxes=result.boxes[keep].reshape(-1, 4), scores=result.scores[keep],
                   class_ids=result.class_ids[keep],
                   names=tuple(result.names[i] for i in keep), track_ids=ids)
