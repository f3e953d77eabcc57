"""The subject stage of the live loop: find each subject kind once per frame (tracking
between frames), cut each model's input from it, and put results back into the frame."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Dict, Iterable, Literal, Optional, Tuple, Union

import numpy as np

from edge_app.model.results import DetectionsResult, NoSubject, PointsResult, Result
from edge_app.subject.base import NOISY_SIGMA, Subject, SubjectFinder, noise_level, smoothed
from edge_app.subject.crop import CropBox, crop_box, crop_input, from_crop
from edge_app.subject.landmarks import LocalFrame, canonical_points
from edge_app.subject.providers import make_finder
from edge_app.subject.search import LIVE, SearchPolicy, SubjectSearch

log = logging.getLogger(__name__)

Denoise = Literal["auto", "on", "off"]
DENOISE_MODES: Tuple[Denoise, ...] = ("auto", "on", "off")
NOISE_EVERY = 15   # frames between two noise readings (3 ms at 640x480 on a desktop CPU)
QUIET = 0.8        # hysteresis: smoothing stops below QUIET * NOISY_SIGMA, so it does not flicker


class NoiseGate:
    """Whether the search sees live frames smoothed: ``on``, ``off``, or ``auto`` (the
    camera's noise read every ``NOISE_EVERY`` frames; smoothing from ``NOISY_SIGMA``). A dim
    or cheap sensor's noise hides the hand from the detector (signdigits photos as noisy
    640x480 frames: found on 6.7% -> 100% of them, benchmarks/runtime.py)."""

    def __init__(self, mode: str = "auto", every: int = NOISE_EVERY) -> None:
        if mode not in DENOISE_MODES:
            raise ValueError(f"denoise mode must be one of {DENOISE_MODES}, not {mode!r}")
        self.mode, self.every = mode, max(1, every)
        self.active = mode == "on"
        self.level: Optional[float] = None
        self._frames = 0

    def look(self, image: np.ndarray) -> np.ndarray:
        """What the search should see of this frame."""
        if self.mode == "auto":
            if self._frames % self.every == 0:
                self._update(noise_level(image))
            self._frames += 1
        return smoothed(image).image if self.active else image

    def _update(self, level: float) -> None:
        self.level = level
        was = self.active
        self.active = level >= (QUIET * NOISY_SIGMA if was else NOISY_SIGMA)
        if self.active != was:
            log.info("camera noise %.1f: the subject search %s (edge-app run --denoise on|off "
                     "to decide yourself)", level, "smooths frames" if self.active else "sees frames as they are")


class SubjectStage:
    """One search per subject kind the models need ('hand', 'face'): the finder under the live
    policy (:class:`edge_app.subject.search.SubjectSearch`: tracking checked, the camera's look
    learned and held, or pinned by ``look``)."""

    def __init__(self, kinds: Iterable[str], provider: str = "auto", tracking: bool = True,
                 denoise: str = "auto", look: Optional[str] = None,
                 policy: Optional[SearchPolicy] = None, stills: bool = True) -> None:
        self.noise = NoiseGate(denoise)
        self.stills = stills   # pictures of a folder get eval's whole search (False: as a camera)
        policy = policy or replace(LIVE, tracking=tracking)
        self.finders: Dict[str, SubjectFinder] = {
            k: make_finder(k, provider, policy.tracking) for k in sorted(set(kinds))}
        self.searches: Dict[str, SubjectSearch] = {
            k: SubjectSearch(f, policy, look) for k, f in self.finders.items()}

    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None,
             still: bool = False) -> Dict[str, Optional[Subject]]:
        """Each kind's subject (the smoothed picture has the frame's size: what is found
        there is where it is). A ``still`` (a picture of an image folder, not a camera's frame)
        is searched as eval searches labelled stills, with no time limit per frame."""
        if still and self.stills:
            return {k: search.find_still(image, truth) for k, search in self.searches.items()}
        seen = image if truth and truth.get("subject") else self.noise.look(image)
        return {k: search.find(seen, truth) for k, search in self.searches.items()}

    def reset(self) -> None:
        """A new stream (the next class folder of an evaluation): tracking forgotten."""
        for search in self.searches.values():
            search.reset()

    def looks(self) -> Dict[str, str]:
        """The camera look each kind's search holds."""
        return {k: search.look for k, search in self.searches.items()}

    def close(self) -> None:
        for f in self.finders.values():
            f.close()

    def __enter__(self) -> SubjectStage:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def stage_provider(provider: str, schemas: Iterable[Optional[str]]) -> str:
    """The provider a subject stage should use for models reading these landmark schemas.
    ``auto`` prefers the simulator's ground truth, but that truth has five face points: a
    model that reads the face mesh needs the detector's own points, so it gets MediaPipe."""
    if provider == "auto" and "face_mesh" in set(schemas):
        return "mediapipe"
    return provider


def crop_for(image: np.ndarray, subject: Subject, pad: float,
             size: Tuple[int, int]) -> Tuple[np.ndarray, CropBox]:
    """A model's input (RGB, ``size``) from the subject's square crop, and the crop."""
    cb = crop_box(subject.box, pad)
    return crop_input(image, cb, size), cb


def _info(subject: Subject, frame_size: Tuple[int, int]) -> Dict[str, Any]:
    w, h = frame_size
    x0, y0, x1, y1 = subject.box
    info: Dict[str, Any] = {"kind": subject.kind, "box": [round(x0 / w, 5), round(y0 / h, 5),
                                                         round(x1 / w, 5), round(y1 / h, 5)]}
    points = canonical_points(subject)   # 21 hand points, or 5 for a face (not all 468)
    if points is not None:
        info["landmarks"] = np.round(points / np.array([w, h]), 4).tolist()
    return info


def place(result: Result, subject: Subject, where: Union[CropBox, LocalFrame],
          frame_size: Tuple[int, int]) -> Result:
    """A result computed on a crop (or on landmarks in the subject's own frame), in frame
    coordinates, carrying its subject's box and landmarks."""
    if isinstance(result, (NoSubject, DetectionsResult)):
        return result
    info = _info(subject, frame_size)
    if isinstance(result, PointsResult):
        if isinstance(where, CropBox):
            points = from_crop(result.points, where, frame_size)
        else:
            points = where.to_pixels(result.points) / np.array(frame_size, np.float64)
        return replace(result, points=points.astype(np.float32), subject=info)
    return replace(result, subject=info)
