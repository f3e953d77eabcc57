"""The frame type and the interface every source implements."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge_app.camera.rotation import rotate_image, rotate_truth
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
    rotation: int = 0                       # clockwise turn applied to the device's picture
    raw: Optional[np.ndarray] = None        # the picture before a software turn (collect keeps it)
    raw_turn: int = 0                       # the turn from ``raw`` to ``image``


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
    turns_in_hardware: bool = False   # ?rotate= is done by the device (CSI: nvvidconv)

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.info = SourceInfo()
        self._next_id = 0
        self.rotate = 0       # clockwise degrees that make the picture upright (?rotate=)
        self.correction = 0   # a further turn found by the camera check once open (correct())
        self.look: Optional[str] = None   # ?look=: the camera look the subject search holds

    def set_rotation(self, rotation: int) -> None:
        """Turn every frame clockwise by ``rotation`` (0, 90, 180, 270) before handing it out,
        ground truth with it. Call before :meth:`open`; sources that can turn the picture in
        hardware override this."""
        self.rotate = rotation % 360

    def correct(self, rotation: int) -> None:
        """Turn frames by a further ``rotation`` from the next one on, in software, on top of
        ``?rotate=`` (the camera check's answer, kept for the rest of the session). Safe while
        a reader thread reads: one int is swapped."""
        self.correction = rotation % 360

    @property
    def total_rotation(self) -> int:
        """The whole clockwise turn applied to the device's picture: ``?rotate=`` and
        :meth:`correct` together (what ``?rotate=`` should say next time)."""
        return (self.rotate + self.correction) % 360

    def _software_rotation(self, correction: Optional[int] = None) -> int:
        """The turn :meth:`read` applies (the device's own left out)."""
        correction = self.correction if correction is None else correction
        return ((0 if self.turns_in_hardware else self.rotate) + correction) % 360

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
        correction = self.correction   # one value per frame, whatever correct() does meanwhile
        turn = self._software_rotation(correction)
        if turn:
            extras = dict(extras, raw=image, raw_turn=turn)
            image = rotate_image(image, turn)
            if extras.get("truth") is not None:
                extras = dict(extras, truth=rotate_truth(extras["truth"], turn))
        frame = Frame(image=image, id=self._next_id, timestamp=time.monotonic(),
                      rotation=(self.rotate + correction) % 360, **extras)
        self._next_id += 1
        return frame

    def frame_size(self) -> Tuple[int, int]:
        """(width, height) of the frames :meth:`read` hands out: the device's mode, turned."""
        w, h = self.info.width, self.info.height
        return (h, w) if self._software_rotation() % 180 else (w, h)

    def describe(self) -> str:
        """One line: the URI and the mode the source actually delivers."""
        i = self.info
        parts = [self.uri]
        if i.width:
            parts.append("{}x{}".format(*self.frame_size()))
        if i.fourcc:
            parts.append(i.fourcc)
        if i.fps:
            parts.append(f"{i.fps:.0f} fps")
        if self.total_rotation:
            parts.append(f"turned {self.total_rotation} degrees clockwise")
        return " ".join(parts)

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
