"""One subject search for the live loop, adaptive to the camera.

Eval searches labelled stills with the hard search: the picture as it is, then with weaker
detections, inside borders, and under other looks (colour cast removed, exposure corrected,
denoised, enlarged, in windows: :func:`edge_app.subject.base.hard_attempts`). The live loop runs
the same attempts, only with a budget per frame: when the subject is missing it tries a few of
them on that frame, and a look that finds it (a purple camera: ``grey_world``) is held as the
camera's look, so the next frames are searched, and tracked, through it. The camera's look is
held while its recent finds outweigh the others' and every change is logged, as the noise gate
does for noise. On a new scene (a cut, or a stream of unrelated stills) the missed frame gets a
larger budget: nothing from the frames before can help there.

Tracking is never trusted blindly: the tracker is reset when the scene changes between two
frames (a stream of unrelated stills, a cut), and every ``fresh_every`` frames a fresh search
checks that the tracked subject is still where the picture shows one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import chain
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.opencv import cv2
from edge_app.registry import Registry
from edge_app.subject.base import (
    Attempt,
    Subject,
    SubjectFinder,
    box_iou,
    exposure_corrected,
    find_bordered,
    grey_world,
)
from edge_app.subject.providers import find_subject, make_finder

log = logging.getLogger(__name__)

RETRY_EVERY = 5   # while nothing is in view, the border retry runs on every 5th frame only

# The looks a camera can be held in: each the same size as the frame, so what is found in it
# is where it is. (Denoising is the noise gate's; windows and enlarging find a far subject on
# one frame and are not a property of the camera.)
LOOKS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("camera look", [
    ("plain", lambda image: image),
    ("grey_world", grey_world),
    ("exposure", exposure_corrected),
    ("grey_world+exposure", lambda image: exposure_corrected(grey_world(image))),
])


@dataclass(frozen=True)
class SearchPolicy:
    """What one search may spend. Eval's hard search is the same attempts without a budget."""

    tracking: bool = True     # follow the subject from frame to frame (MediaPipe's tracker)
    budget: int = 4           # hard-search attempts on a frame where the subject is missing ...
    new_scene_budget: int = 32   # ... or on a new scene: the whole hard search (nothing carries over)
    patience: int = 30        # ... on each of this many missed frames in a row,
    backoff: int = 10         # then on every backoff-th missed frame only (an empty scene)
    fresh_every: int = 30     # tracking: a fresh search this often checks the tracked subject
    scene_change: float = 0.05   # mean change of a small grey thumbnail that ends tracking
    memory: float = 0.97      # per frame: how long a look's finds count toward holding it
    margin: float = 1.0       # a look is held once its finds outweigh the held one's by this


LIVE = SearchPolicy()


class SubjectSearch:
    """Finds one subject kind per frame through ``finder`` under ``policy``; ``look`` pins the
    camera look (``?look=NAME`` on the source), else it is learned."""

    def __init__(self, finder: SubjectFinder, policy: SearchPolicy = LIVE,
                 look: Optional[str] = None) -> None:
        self.finder, self.policy = finder, policy
        if look is not None:
            LOOKS.lookup(look, hint="name a look with ?look=NAME")
        self.pinned = look is not None
        self.look = look or "plain"
        self.misses = 0
        self.frames = 0
        self.changes = 0             # how often the held look changed (for doctor and tests)
        self.scores: Dict[str, float] = {name: 0.0 for name in LOOKS}   # recent finds per look
        self.useful: Dict[str, float] = {}   # recent finds per hard-search look (windows too)
        self._thumb: Optional[np.ndarray] = None
        self._new_scene = True
        self._since_fresh = 0

    # -- the frame's search ---------------------------------------------------------------
    def find(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        if truth and truth.get("subject"):   # the simulator's ground truth is exact
            return self.finder.find(image, truth)
        self.frames += 1
        for table in (self.scores, self.useful):
            for name in table:
                table[name] *= self.policy.memory
        self._new_scene = self._scene_changed(image)
        if self.finder.tracking and self._new_scene:
            self.finder.reset()   # what was tracked is not in this picture
            self._since_fresh = 0
        seen = LOOKS[self.look](image) if self.look != "plain" else image
        found = find_subject(self.finder, seen, retry=self.misses % RETRY_EVERY == 0)
        if found is not None and self.finder.tracking:
            found = self._checked(seen, found)
        if found is not None:
            self.misses = 0
            self._found_in(self.look)
            return found
        self.misses += 1
        if self.pinned:
            return None
        if self.misses > self.policy.patience and self.misses % self.policy.backoff:
            return None
        return self._search_hard(image)

    def find_still(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Subject]:
        """A picture of an image folder: no frame before it is related and no frame after it
        waits, so it gets eval's whole search (the hard search, noisy stills cleaned first):
        ``run --source FOLDER`` answers what ``eval`` answers on the same pictures."""
        self.finder.reset()   # unrelated to whatever came before
        self._thumb = None
        found = find_subject(self.finder, image, truth, hard=True)
        self.misses = 0 if found is not None else self.misses + 1
        return found

    def reset(self) -> None:
        """A new stream: forget the tracked subject and the last picture (the look is kept:
        it belongs to the camera)."""
        self.finder.reset()
        self._thumb = None
        self._new_scene = True
        self.misses = self._since_fresh = 0

    def close(self) -> None:
        self.finder.close()

    # -- tracking checks ------------------------------------------------------------------
    def _scene_changed(self, image: np.ndarray) -> bool:
        cv = cv2()
        grey = cv.cvtColor(image, cv.COLOR_BGR2GRAY) if image.ndim == 3 else image
        thumb = cv.resize(grey, (32, 24), interpolation=cv.INTER_AREA).astype(np.float32) / 255.0
        before, self._thumb = self._thumb, thumb
        return before is None or float(np.abs(thumb - before).mean()) > self.policy.scene_change

    def _checked(self, seen: np.ndarray, tracked: Subject) -> Optional[Subject]:
        """Every ``fresh_every`` frames a fresh search: a tracker that drifted off the subject
        (or follows one that left) is reset and the fresh answer taken."""
        self._since_fresh += 1
        if self._since_fresh < self.policy.fresh_every:
            return tracked
        self._since_fresh = 0
        fresh = self.finder.find_again(seen) or find_bordered(self.finder.find_again, seen)
        if fresh is None or box_iou(fresh.box, tracked.box) < 0.3:
            self.finder.reset()
            return fresh
        return tracked

    # -- the camera's look ----------------------------------------------------------------
    def _search_hard(self, image: np.ndarray) -> Optional[Subject]:
        """Hard-search attempts on a missed frame, the held look's first: ``budget`` of them;
        ``new_scene_budget`` on a new scene and on the first frame the subject is missing from
        (a still that looks like the last one, or a hand that just left: searched well once)."""
        full = self._new_scene or self.misses == 1
        budget = self.policy.new_scene_budget if full else self.policy.budget
        for attempt in self._attempts(image, budget):
            found = attempt.run()
            if found is not None:
                self.useful[attempt.look] = self.useful.get(attempt.look, 0.0) + 1.0
                if attempt.look in LOOKS:
                    self._found_in(attempt.look)
                return found
        return None

    def _attempts(self, image: np.ndarray, budget: int) -> Iterator[Attempt]:
        held: Iterator[Attempt] = iter(())
        if self.look != "plain":
            seen, weak = LOOKS[self.look](image), self.finder.find_weak
            held = iter([Attempt(self.look, lambda: weak(seen)),
                         Attempt(self.look, lambda: find_bordered(weak, seen))])
        # the hard search's order, but what found the subject lately first (a far camera's
        # windows, a dim one's denoised looks): the sort is stable and the looks lazy
        rest = sorted((a for a in self.finder.attempts(image) if a.look != self.look),
                      key=lambda a: -self.useful.get(a.look, 0.0))
        for n, attempt in enumerate(chain(held, rest)):
            if n >= budget:
                return
            yield attempt

    def _found_in(self, look: str) -> None:
        """Count a find under ``look``; hold the look whose recent finds outweigh the held
        one's (a camera's look changes with its light, not with one lucky frame)."""
        self.scores[look] += 1.0
        if self.pinned:
            return
        best = max(self.scores, key=lambda name: self.scores[name])
        if best != self.look and self.scores[best] > self.scores[self.look] + self.policy.margin:
            why = ("the {} is found in it more often than in the frame as the camera gives it"
                   if best != "plain" else "the {} is found in the frame as it is again")
            self._hold(best, why.format(self.finder.kind))

    def _hold(self, look: str, why: str) -> None:
        log.info("camera look: %s (%s; pin one with ?look=NAME on the source)", look, why)
        self.look, self.changes = look, self.changes + 1
        self.finder.reset()   # the tracker followed the subject in the other look's pictures


@dataclass
class LookReport:
    """Where a camera's look settled for one subject kind, over the frames read."""

    kind: str
    look: str
    found: int
    frames: int

    def line(self) -> str:
        return (f"{self.kind}: {self.look} (found in {self.found} of {self.frames} frames)"
                if self.found else f"{self.kind}: none found in {self.frames} frames")


def settle_look(frames: Iterable[Tuple[np.ndarray, Optional[Dict[str, Any]]]],
                kinds: Sequence[str] = ("hand", "face"), provider: str = "auto",
                limit: int = 90) -> List[LookReport]:
    """The live search run over up to ``limit`` frames for each subject kind: the look each
    one settles on (``edge-app doctor --source``; pin it with ``?look=NAME``)."""
    searches = {k: SubjectSearch(make_finder(k, provider, True), LIVE) for k in kinds}
    found = {k: 0 for k in kinds}
    n = 0
    try:
        for image, truth in frames:
            for k, search in searches.items():
                found[k] += search.find(image, truth) is not None
            n += 1
            if n >= limit:
                break
    finally:
        for search in searches.values():
            search.close()
    return [LookReport(k, searches[k].look, found[k], n) for k in kinds]
