"""An image folder (or a single image) as a finite frame source."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.camera.rotation import rotate_image
from edge_app.dataset.verify import declared_rotation
from edge_app.errors import SourceError
from edge_app.image_files import IMAGE_EXTENSIONS, list_images
from edge_app.names import printable
from edge_app.opencv import cv2
from edge_app.sources.base import FrameSource

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "list_images"]

log = logging.getLogger(__name__)


class ImageFolder(FrameSource):
    """Every image under a folder, sorted; unreadable files are skipped with a warning. Images
    of a dataset that declares ``rotate:`` (dataset.yaml) come upright, as training reads them;
    ``?rotate=`` turns them further."""

    def __init__(self, uri: str, path: str, loop: bool = False) -> None:
        super().__init__(uri)
        self.path = Path(path)
        self.loop = loop
        self.files: List[Path] = []
        self.skipped: List[str] = []
        self._pos = 0

    def open(self) -> None:
        self.files = [self.path] if self.path.is_file() else list_images(self.path)
        if not self.files:
            raise SourceError("{}: no images found (looked for {})".format(
                self.uri, ", ".join(IMAGE_EXTENSIONS)))
        self._pos = 0

    def _grab(self) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        while True:
            if self._pos >= len(self.files):
                if not self.loop or len(self.skipped) >= len(self.files):
                    return None
                self._pos = 0
            path = self.files[self._pos]
            self._pos += 1
            image, why = _read(path)
            if image is not None:
                self.info.height, self.info.width = image.shape[:2]
                return image, {"path": printable(path)}
            if printable(path) not in self.skipped:
                self.skipped.append(printable(path))
                log.warning("%s: skipped %s (%s)", self.uri, printable(path), why)


def _read(path: Path) -> Tuple[Optional[np.ndarray], str]:
    """The image, or None and why. Read as bytes: OpenCV's imread takes the name as UTF-8 text
    and crashes on a name that is not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if not data:
        return None, "empty file"
    image = cv2().imdecode(np.frombuffer(data, np.uint8), cv2().IMREAD_COLOR)
    if image is None:
        return None, "not a readable image"

    turn = declared_rotation(path)   # the camera's turn, declared by the dataset holding it
    if turn:
        image = rotate_image(image, turn)
    return image, ""
