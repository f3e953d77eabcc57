"""The frame type and the interface every source implements."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge_app.errors import SourceError


class SourceLost(SourceError):
    """A live source stopped delivering frames (unplugged camera, dropped stream)."""


@dataclass
class Frame:
    """One image from a source. ``id`` increases by one per frame read from the source, so a
    consumer can tell a new frame from one it has seen; ``timestamp`` is ``time.monotonic()``."""

    image: np.ndarray                      # BGR, uint8, HxWx3
    id: int
    timestamp: float
    truth: Optional[Dict[str, Any]] = None  # simulator ground truth, normalised coordinates
    path: Optional[str] = None              # image-folder sources: the file it came from


@dataclass
class SourceInfo:
    """What the source actually delivers (which may differ from what was asked)."""

    width: int = 0
    height: int = 0
    fps: float = 0.0
    fourcc: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


class FrameSource(ABC):
    """A camera, file, stream or simulator. ``live`` sources produce frames in real time
    (a slow consumer should take the newest and drop the rest); others can be read at any pace."""

    live: bool = False
    has_truth: bool = False   # frames carry ground truth (the simulator)

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.info = SourceInfo()
        self._next_id = 0

    @abstractmethod
    def open(self) -> None:
        """Open the device or file; raise :class:`SourceError` with a fix when it cannot."""

    @abstractmethod
    def _grab(self) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        """The next image and its extras, or None at the end of a finite source."""

    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def request_label(self, label: Optional[str]) -> bool:
        """Ask the subject to show ``label``. Only a simulated camera can; others return False."""
        return False

    def read(self) -> Optional[Frame]:
        """The next frame, or None at the end of the stream. Live sources raise
        :class:`SourceLost` when the device stops delivering."""
        got = self._grab()
        if got is None:
            return None
        image, extras = got
        frame = Frame(image=image, id=self._next_id, timestamp=time.monotonic(), **extras)
        self._next_id += 1
        return frame

    def describe(self) -> str:
        """One line: the URI and the mode the source actually delivers."""
        i = self.info
        parts = [self.uri]
        if i.width:
            parts.append("{}x{}".format(i.width, i.height))
        if i.fourcc:
            parts.append(i.fourcc)
        if i.fps:
            parts.append("{:.0f} fps".format(i.fps))
        return " ".join(parts)

    def __enter__(self) -> "FrameSource":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
