"""An image folder (or a single image) as a finite frame source."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.verify import read_image
from edge_app.errors import SourceError
from edge_app.image_files import IMAGE_EXTENSIONS, list_images
from edge_app.names import printable
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
            image, why = read_image(path)   # the pixel limit checked on the header first
            if image is not None:
                self.info.height, self.info.width = image.shape[:2]
                return image, {"path": printable(path)}
            if printable(path) not in self.skipped:
                self.skipped.append(printable(path))
                log.warning("%s: skipped %s (%s)", self.uri, printable(path), why)

