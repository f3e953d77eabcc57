"""Subject providers behind one interface, from one registry:

- ``truth``: the simulator's ground truth carried by the frame (sim:// sources, captured sims);
- ``mediapipe``: MediaPipe Hands / Face Mesh (models ship inside its wheel; runs offline);
- ``whole``: the whole image is the subject (close-up photos, or no detector at all);
- ``auto``: the frame's ground truth where there is one, else MediaPipe.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from edge_app.errors import UserError, did_you_mean
from edge_app.registry import Registry
from edge_app.subject import base
from edge_app.subject.base import (
    NOISY_SIGMA,
    Attempt,
    Subject,
    SubjectFinder,
    box_iou,
    find_with_retry,
    noise_level,
    noisy_looks,
)
from edge_app.subject.mediapipe_finder import MediaPipeFinder


class TruthFinder(SubjectFinder):
    """The simulator's ground truth, through the same interface as a detector."""

    name = "truth"

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        subject = (truth or {}).get("subject")
        if not subject:
            return None
        h, w = image.shape[:2]
        found = Subject.from_dict(subject, (w, h))
        found.source = self.name
        return found


class WholeImageFinder(SubjectFinder):
    """Declares the whole image to be the subject."""

    name = "whole"

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        h, w = image.shape[:2]
        return Subject(self.kind, (0.0, 0.0, float(w), float(h)), source=self.name)


class ChainFinder(SubjectFinder):
    """The first provider that answers: ground truth when the frame has it, else a detector
    (created only when first needed, so simulated sources never load one)."""

    name = "auto"

    def __init__(self, kind: str, tracking: bool, makers: List[Callable[[], SubjectFinder]]) -> None:
        super().__init__(kind, tracking)
        self._makers = makers
        self._finders: List[Optional[SubjectFinder]] = [None] * len(makers)

    def _finder(self, i: int) -> SubjectFinder:
        finder = self._finders[i]
        if finder is None:
            finder = self._finders[i] = self._makers[i]()
        return finder

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        if truth and truth.get("subject"):
            return self._finder(0).find(image, truth)
        return self._finder(len(self._makers) - 1).find(image, truth)

    def find_again(self, image: np.ndarray) -> Optional[Subject]:
        return self._finder(len(self._makers) - 1).find_again(image)

    def find_hard(self, image: np.ndarray) -> Optional[Subject]:
        return self._finder(len(self._makers) - 1).find_hard(image)

    def attempts(self, image: np.ndarray) -> Iterator[Attempt]:
        return self._finder(len(self._makers) - 1).attempts(image)

    def find_weak(self, image: np.ndarray) -> Optional[Subject]:
        return self._finder(len(self._makers) - 1).find_weak(image)

    def reset(self) -> None:
        for f in self._finders:
            if f is not None:
                f.reset()

    def close(self) -> None:
        for f in self._finders:
            if f is not None:
                f.close()


def _mediapipe(kind: str, tracking: bool) -> SubjectFinder:
    return MediaPipeFinder(kind, tracking)


def _auto(kind: str, tracking: bool) -> SubjectFinder:
    return ChainFinder(kind, tracking, [lambda: TruthFinder(kind, tracking),
                                        lambda: _mediapipe(kind, tracking)])


PROVIDERS: Registry[Callable[[str, bool], SubjectFinder]] = Registry("--subject-provider", {
    "auto": _auto,
    "mediapipe": _mediapipe,
    "truth": TruthFinder,
    "whole": WholeImageFinder,
}.items())


def make_finder(kind: str, provider: str = "auto", tracking: bool = False) -> SubjectFinder:
    """A finder for ``kind`` ('hand' or 'face') from ``provider`` (see :data:`PROVIDERS`)."""
    if provider not in PROVIDERS:
        raise UserError("subject provider '{}' is not one of {}{}".format(
            provider, ", ".join(PROVIDERS), did_you_mean(provider, PROVIDERS)))
    return PROVIDERS[provider](kind, tracking)


def _cleaned_find(finder: SubjectFinder, image: np.ndarray, is_crop: bool) -> Optional[Subject]:
    """Found in the noise, points scatter: the subject searched in each of
    :func:`base.noisy_looks`, each point the median of the finds that agree on where it is."""
    h, w = image.shape[:2]
    finds = []
    for look in noisy_looks(image):
        found = find_with_retry(finder, look.image, always=is_crop, hard=True)
        if found is not None:
            finds.append(look.back(found, w, h))
    return median_subject(finds)


def median_subject(finds: List[Subject]) -> Optional[Subject]:
    """One subject from several finds of it: those whose box overlaps the box most others
    overlap (another hand, found in one look, is left out), with the median of their points
    and boxes."""
    if not finds:
        return None
    agree = max(([f for f in finds if f is g or box_iou(f.box, g.box) >= 0.3] for g in finds), key=len)
    shapes = [f.landmarks.shape for f in agree if f.landmarks is not None]
    same = [f for f in agree if f.landmarks is not None and f.landmarks.shape == shapes[0]]
    if len(same) < 2:
        return agree[0]
    x0, y0, x1, y1 = (float(v) for v in np.median([f.box for f in same], axis=0))
    points = np.median(np.stack([f.landmarks for f in same if f.landmarks is not None]), axis=0)
    return replace(same[0], box=(x0, y0, x1, y1), landmarks=points)


def find_subject(finder: SubjectFinder, image: np.ndarray, truth: Optional[Dict[str, Any]] = None,
                 is_crop: bool = False, retry: bool = True, hard: bool = False) -> Optional[Subject]:
    """The subject with the border retry (unless ``retry`` is False); ``hard`` for labelled
    stills known to show one (see :meth:`SubjectFinder.find_hard`); for an image declared as
    a crop, the whole image when nothing is found (it is known to be the subject)."""
    if truth and truth.get("subject"):   # ground truth is exact: nothing to retry
        return finder.find(image, truth)
    if not retry and not is_crop:
        return finder.find(image, truth)
    if hard and base.SMOOTH_SIGMA and noise_level(image) >= NOISY_SIGMA:
        found = _cleaned_find(finder, image, is_crop)
        if found is not None:
            return found
    found = find_with_retry(finder, image, always=is_crop, hard=hard)
    if found is None and is_crop:
        found = WholeImageFinder(finder.kind).find(image)
    return found
