"""The capture tool's state, apart from any window: what is selected, what is placed, saving."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from edge_app.camera.check import CameraCheck, check_source
from edge_app.camera.rotation import combine, inverse, rotate_image
from edge_app.dataset.meta import read_meta
from edge_app.dataset.writer import AsyncWriter, DatasetWriter
from edge_app.errors import UserError
from edge_app.sources.base import Frame
from edge_app.subject.base import SubjectFinder
from edge_app.subject.mediapipe_finder import import_mediapipe
from edge_app.subject.providers import find_subject, make_finder
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)


class CaptureSession:
    """Selects a class (or point), places points, and hands shots to a background writer.

    Frames come upright (the source's ``?rotate=`` or the camera check's correction), and so
    do labels. A dataset that declares ``rotate: R`` (its images stored as a turned camera
    delivered them) gets new images stored the same way, turned back by R, so that reading
    turns every image alike; labels stay in the upright picture's coordinates."""

    def __init__(self, task: TaskSpec, out: Union[str, Path], queue_size: int = 64,
                 finder: Optional[SubjectFinder] = None) -> None:
        self.task = task
        self.finder = finder
        dataset = DatasetWriter(out, task)
        self.declared = int(read_meta(dataset.root).get("rotate", 0))   # the dataset's rotate:
        find = None if finder is None else (
            lambda image: _found(finder, rotate_image(image, self.declared)))
        self.writer = AsyncWriter(dataset, maxsize=queue_size, find_subject=find)
        self.index = 0
        self.points: Dict[str, Tuple[float, float]] = {}
        self.frozen: Optional[Frame] = None   # keypoints: the frame being labelled
        self.last_save = 0.0

    # -- selection -----------------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return self.task.labels

    @property
    def current(self) -> str:
        return self.labels[self.index]

    @property
    def is_points(self) -> bool:
        return self.task.task_kind.dataset_layout == "csv"

    def select(self, index: int) -> bool:
        """Select the class or point at ``index``; False when out of range."""
        if 0 <= index < len(self.labels):
            self.index = index
            return True
        return False

    def step(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.labels)

    @property
    def counts(self) -> Dict[str, int]:
        return dict(self.writer.writer.counts)

    # -- saving --------------------------------------------------------------------------
    def _submit(self, image: Any, **labels: Any) -> bool:
        """Queue an upright image, stored as the dataset stores its images (see the class)."""
        return self.writer.submit(rotate_image(image, inverse(self.declared)), **labels)

    def check(self) -> None:
        """Raise the writer's error (e.g. a full disk) in the caller."""
        if self.writer.error is not None:
            raise self.writer.error if isinstance(self.writer.error, UserError) else UserError(
                f"saving failed: {self.writer.error}")

    def save_class(self, frame: Frame, label: Optional[str] = None) -> bool:
        """Queue ``frame`` as an example of ``label`` (default: the selected class)."""
        self.check()
        self.last_save = time.monotonic()
        return self._submit(frame.image, label=label or self.current,
                                  subject=_subject(frame))

    def save_truth(self, frame: Frame) -> bool:
        """Queue ``frame`` labelled from the simulator's ground truth."""
        if frame.truth is None:
            raise UserError("this source has no ground truth to label from; pass --label")
        self.check()
        self.last_save = time.monotonic()
        if self.is_points:
            return self._submit(frame.image, points=frame.truth["points"],
                                      subject=_subject(frame))
        return self._submit(frame.image, label=frame.truth["label"], subject=_subject(frame))

    def place_point(self, frame: Frame, x: float, y: float) -> bool:
        """Place the selected point at normalised (x, y) on ``frame`` (frozen from the first
        click on) and select the next unplaced one. A one-point task saves at once, as the
        course notebook did; returns True when something was saved."""
        if self.frozen is None:
            self.frozen = frame
        self.points[self.current] = (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
        if len(self.labels) == 1:
            return self.save_points()
        for offset in range(1, len(self.labels) + 1):
            nxt = (self.index + offset) % len(self.labels)
            if self.labels[nxt] not in self.points:
                self.index = nxt
                break
        return False

    def remove_point(self, name: Optional[str] = None) -> None:
        """Remove a placed point and select it, so the next click places it again."""
        name = name or self.current
        self.points.pop(name, None)
        self.index = self.labels.index(name)
        if not self.points:
            self.frozen = None

    def save_points(self) -> bool:
        """Queue the frozen frame with the placed points, then start over."""
        if self.frozen is None or not self.points:
            return False
        self.check()
        ok = self._submit(self.frozen.image, points=dict(self.points),
                                subject=_subject(self.frozen))
        self.last_save = time.monotonic()
        self.discard_points()
        return ok

    def accept(self, frame: Frame, suggestion: Any) -> str:
        """Take a landmark suggestion: classes are saved with the suggested label; points are
        placed on the frozen frame for the user to correct (click) and save (Enter)."""
        if self.is_points:
            points = {k: v for k, v in suggestion.points.items() if k in self.labels}
            if not points:
                return "no points suggested"
            self.frozen = frame
            self.points.update(points)
            return "suggested points placed: click to correct, Enter to save"
        if suggestion.label is None:
            return "no label suggested"
        self.check()
        self.last_save = time.monotonic()
        subject = _subject(frame) or suggestion.subject.to_dict((frame.image.shape[1], frame.image.shape[0]))
        ok = self._submit(frame.image, label=suggestion.label, subject=subject)
        return f"saved as {suggestion.label}" if ok else "writer busy: shot skipped"

    def discard_points(self) -> None:
        self.points.clear()
        self.frozen = None
        self.index = 0

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        self.writer.close()
        if self.finder is not None:
            self.finder.close()


def _subject(frame: Frame) -> Optional[dict]:
    return frame.truth.get("subject") if frame.truth else None


def _found(finder: SubjectFinder, image: Any) -> Optional[dict]:
    """The subject stored beside a captured image, so crops are reproducible and cheap."""
    found = find_subject(finder, image, hard=True)   # the user labelled it: a subject is there
    return None if found is None else found.to_dict((image.shape[1], image.shape[0]))


def capture_finder(task: TaskSpec, has_truth: bool) -> Optional[SubjectFinder]:
    """A detector for a camera capture of a task with a subject; None (with a note) when there
    is none to use: the subjects are then found on first training use instead."""
    if task.subject == "none" or has_truth:
        return None

    try:
        import_mediapipe()
    except UserError as exc:
        log.info("note: %s boxes are not stored with the images (%s)", task.subject, exc)
        return None
    return make_finder(task.subject, "mediapipe", tracking=False)


def camera_check_skipped(source: Any, seconds: float) -> str:
    """Why capture does not check the camera's rotation (see :func:`check_camera`), or ""."""
    if seconds <= 0:
        return "off (--camera-check 0)"
    if source.total_rotation:
        return f"rotate={source.total_rotation} given with the source"
    if not (source.live or source.has_truth):
        return "a file is what it is: declare a turn with ?rotate= (edge-app doctor --source finds it)"
    if not source.has_truth:
        try:
            import_mediapipe()
        except UserError as exc:
            return f"no detector ({exc})"
    return ""


def camera_checker(source: Any) -> Any:
    """The camera check's detectors for ``source``: its ground truth when it has one."""
    return CameraCheck(provider="truth" if source.has_truth else "mediapipe")


def check_camera(reader: Any, seconds: float, frames: int = 150) -> Any:
    """Headless capture, before saving: the camera check over the reader's frames (at most
    ``frames`` or ``seconds``); a turn found is kept for the session (the source turns every
    later frame, so what is saved is upright). The :class:`~edge_app.camera.check.SourceCheck`."""
    result = check_source(reader, seconds=seconds, frames=frames, check=camera_checker(reader.source))
    keep_rotation(reader.source, result)
    return result


def keep_rotation(source: Any, result: Any) -> None:
    """Apply the check's answer to ``source`` and say so (the source's turn so far counts)."""
    turn = result.estimate.rotation
    if turn:
        source.correct(combine(source.correction, turn))
        log.info("camera check: %s; frames are turned upright from now on (next time: %s)",
                 result.line(), result.fix())
    else:
        log.info("camera check: %s%s", result.line(), "" if turn == 0 else
                 "; images are saved as the camera delivers them")
