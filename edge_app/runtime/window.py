"""The OpenCV window of the live loop: q/Esc quit, p pauses, s saves a snapshot."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edge_app.opencv import cv2

log = logging.getLogger(__name__)


class Window:
    """Shows annotated frames; ``show`` returns False when the user quits."""

    def __init__(self, title: str = "edge-app", snapshots: str = ".") -> None:
        self.title = title
        self.snapshots = Path(snapshots)
        self.paused = False
        cv2().namedWindow(title, cv2().WINDOW_AUTOSIZE)

    def show(self, frame: np.ndarray) -> bool:
        cv = cv2()
        if not self.paused:
            cv.imshow(self.title, frame)
        key = cv.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord("p"):
            self.paused = not self.paused
        elif key == ord("s"):
            path = self.snapshots / "snapshot-{}.jpg".format(time.strftime("%Y%m%d-%H%M%S"))
            cv.imwrite(str(path), frame)
            log.info("saved %s", path)
        return True

    def close(self) -> None:
        cv2().destroyWindow(self.title)
