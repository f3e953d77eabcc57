"""The camera check: is this camera's picture turned, and by how much?

Rotation is a property of the camera, never decided per image (a thumbs-up turned by 180
degrees is a thumbs-down), so it is estimated from upright evidence over many frames and then
declared once (``?rotate=90`` on the source, ``rotate: 90`` in ``dataset.yaml``):

- a face: its eye line is horizontal and its nose and mouth are below its eyes; the eye line
  gives the axis (whichever way a mirror turns it) and the nose and mouth give the sign;
- a hand with fingers stretched: the wrist-to-fingers axis points up in most gestures (a fist,
  e.g. a thumbs-up, says nothing and is skipped).

Each subject votes for the quarter turn that makes its "down" point down, when it is clearly
near one; the estimate needs :data:`MIN_FRAMES` votes and a share of :data:`MIN_SHARE` of the
weight (faces count twice a hand), else it is "unknown". A detector that misses a turned face
is given the frame turned by 90, 180 and 270 degrees; what it finds is mapped back.

:class:`RotationVote` is the part any caller with subjects can feed (``add(subject)`` per
subject found, ``result()`` for the answer); :class:`CameraCheck` adds the detectors;
:func:`check_frames` runs it over frames, :func:`check_source` over a camera's (doctor, capture);
:class:`CameraWatch` runs it beside a live preview and keeps the correction once found (the
studio).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.camera.rotation import ROTATIONS, combine, inverse, rotate_image, rotate_pixels
from edge_app.errors import SourceError
from edge_app.sources.factory import uri_with_rotation
from edge_app.subject.base import Subject, SubjectFinder
from edge_app.subject.landmarks import canonical_points
from edge_app.subject.providers import make_finder

log = logging.getLogger(__name__)

MIN_FRAMES = 8        # votes before any answer
MIN_SHARE = 0.75      # the winning turn's share of the vote weight
QUADRANT = math.cos(math.radians(35))   # a subject votes only when within 35 degrees of a turn
WEIGHTS = {"face": 1.0, "hand": 0.5}   # a face is upright far more reliably than a hand
# Hand points (MediaPipe order): wrist, finger bases (MCP), middle joints (PIP), tips.
WRIST, MCPS, PIPS, TIPS = 0, (5, 9, 13, 17), (6, 10, 14, 18), (8, 12, 16, 20)


def _unit(v: np.ndarray) -> Optional[np.ndarray]:
    n = float(np.hypot(v[0], v[1]))
    return None if not np.isfinite(n) or n < 1e-9 else v / n


def _face_down(pts: np.ndarray) -> Optional[np.ndarray]:
    """Five face points (left_eye, right_eye, nose, mouth_left, mouth_right) -> "down"."""
    axis = _unit(pts[0] - pts[1])
    if axis is None:
        return None
    perp = np.array([-axis[1], axis[0]])          # the eye line turned by 90 degrees
    below = pts[2:5].mean(axis=0) - pts[0:2].mean(axis=0)   # nose and mouth from the eyes
    b = _unit(below)
    if b is None or abs(float(perp @ b)) < 0.5:    # nose beside the eyes: a profile, unclear
        return None
    return perp if perp @ b > 0 else -perp


def _hand_down(pts: np.ndarray) -> Optional[np.ndarray]:
    """21 hand points -> "down" (fingers to wrist), only when at least two fingers stretch."""
    wrist = pts[WRIST]
    reach = [np.hypot(*(pts[t] - wrist)) > 1.15 * np.hypot(*(pts[p] - wrist))
             for t, p in zip(TIPS, PIPS)]
    if sum(reach) < 2:
        return None
    return _unit(wrist - pts[list(MCPS)].mean(axis=0))


def down_direction(subject: Subject) -> Optional[np.ndarray]:
    """The image direction (unit vector, x right, y down) that is "down" for the subject, or
    None when its landmarks do not tell."""
    if subject.landmarks is None:
        return None
    pts = canonical_points(subject)
    if pts is None or not np.isfinite(pts).all():
        return None
    if subject.kind == "face" and len(pts) == 5:
        return _face_down(pts)
    if subject.kind == "hand" and len(pts) == 21:
        return _hand_down(pts)
    return None


def turn_for(down: np.ndarray) -> Optional[int]:
    """The clockwise turn that makes ``down`` point down, when it is clearly near one."""
    # Turning clockwise by 90 maps (x, y) to (-y, x): "down" pointing right needs 90.
    scores = {0: down[1], 90: down[0], 180: -down[1], 270: -down[0]}
    best = max(scores, key=lambda r: scores[r])
    return best if scores[best] >= QUADRANT else None


@dataclass(frozen=True)
class RotationEstimate:
    """The vote's answer: ``rotation`` (clockwise degrees to make the picture upright) or None
    when unknown, with the evidence behind it."""

    rotation: Optional[int]
    votes: Dict[int, float]
    counts: Dict[str, int]           # votes per subject kind
    seen: int                        # subjects offered, voting or not
    why: str = ""
    min_frames: int = MIN_FRAMES

    @property
    def known(self) -> bool:
        return self.rotation is not None

    def evidence(self) -> str:
        """e.g. "12 faces, 3 hands voted; 90: 92%"."""
        parts = ["{} {}{}".format(n, k, "s" if n != 1 else "") for k, n in sorted(self.counts.items()) if n]
        total = sum(self.votes.values())
        shares = ", ".join(f"{r}: {w / total:.0%}" for r, w in
                           sorted(self.votes.items(), key=lambda kv: -kv[1]) if w) if total else ""
        return "{} voted{}".format(" and ".join(parts) or "nothing", "; " + shares if shares else "")

    def summary(self) -> str:
        """One line: upright, turned by N, or unknown and why."""
        if self.rotation is None:
            return f"unknown: {self.why} ({self.evidence()})"
        if self.rotation == 0:
            return f"upright ({self.evidence()})"
        return f"turned: the picture needs {self.rotation} degrees clockwise to be upright ({self.evidence()})"


class RotationVote:
    """Votes of subjects (faces, hands) on the camera's rotation. Feed every subject found in
    a frame's own pixels with :meth:`add`; :meth:`result` is "unknown" until the evidence is
    enough and clear. Not thread-safe: one feeder."""

    def __init__(self, min_frames: int = MIN_FRAMES, min_share: float = MIN_SHARE) -> None:
        self.min_frames, self.min_share = min_frames, min_share
        self.votes: Dict[int, float] = {r: 0.0 for r in ROTATIONS}
        self.counts: Dict[str, int] = {}
        self.seen = 0

    def add(self, subject: Optional[Subject]) -> Optional[int]:
        """Count ``subject`` (landmarks in the frame's pixels); the turn it voted for, or None."""
        if subject is None:
            return None
        self.seen += 1
        down = down_direction(subject)
        turn = None if down is None else turn_for(down)
        if turn is not None:
            self.votes[turn] += WEIGHTS.get(subject.kind, 0.5)
            self.counts[subject.kind] = self.counts.get(subject.kind, 0) + 1
        return turn

    @property
    def voters(self) -> int:
        return sum(self.counts.values())

    def result(self) -> RotationEstimate:
        """The estimate so far."""
        total = sum(self.votes.values())
        votes = {r: w for r, w in self.votes.items() if w}
        known = dict(votes=votes, counts=dict(self.counts), seen=self.seen, min_frames=self.min_frames)
        if self.voters < self.min_frames:
            why = (f"{self.voters} subject(s) gave upright evidence, {self.min_frames} needed: show a face, or a hand with "
                   "fingers stretched")
            return RotationEstimate(None, why=why, **known)   # type: ignore[arg-type]
        best = max(self.votes, key=lambda r: self.votes[r])
        if self.votes[best] < self.min_share * total:
            return RotationEstimate(None, why="the evidence is split", **known)   # type: ignore[arg-type]
        return RotationEstimate(best, **known)   # type: ignore[arg-type]


class CameraCheck:
    """Finds faces and hands in frames and votes. Frames with ground truth (the simulator) use
    it; others use ``provider``'s detectors, made on first need. :meth:`close` releases them."""

    def __init__(self, kinds: Sequence[str] = ("face", "hand"), provider: str = "mediapipe",
                 vote: Optional[RotationVote] = None, try_turns: bool = True) -> None:
        self.kinds = tuple(kinds)
        self.provider = provider
        self.vote = vote or RotationVote()
        self.try_turns = try_turns
        self.frames = 0
        self._finders: Dict[str, SubjectFinder] = {}

    def _finder(self, kind: str) -> SubjectFinder:
        if kind not in self._finders:
            self._finders[kind] = make_finder(kind, self.provider, tracking=False)
        return self._finders[kind]

    def subjects(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> List[Subject]:
        """The faces and hands of one frame, landmarks in its pixels."""
        h, w = image.shape[:2]
        if truth and (truth.get("subject") or truth.get("subjects")):
            rows = truth.get("subjects") or [truth["subject"]]
            return [Subject.from_dict(r, (w, h)) for r in rows if r.get("kind") in self.kinds]
        found = []
        for kind in self.kinds:
            subject = self._find(kind, image)
            if subject is not None:
                found.append(subject)
        return found

    def _look(self, kind: str, image: np.ndarray, turn: int) -> Optional[Subject]:
        """The subject found in ``image`` turned by ``turn``, landmarks mapped back into
        ``image``'s pixels."""
        finder = self._finder(kind)
        if not turn:
            return finder.find(image)
        turned = rotate_image(image, turn)
        subject = finder.find(turned)
        if subject is None or subject.landmarks is None:
            return None
        lm = rotate_pixels(subject.landmarks, (turned.shape[1], turned.shape[0]), inverse(turn))
        (x0, y0), (x1, y1) = lm.min(axis=0), lm.max(axis=0)
        return Subject(kind, (float(x0), float(y0), float(x1), float(y1)), lm,
                       subject.score, subject.source, subject.handedness)

    def _find(self, kind: str, image: np.ndarray) -> Optional[Subject]:
        # Detectors are trained on upright people: a turned face is often missed. Look at
        # the frame turned too, and map what is found back into the frame's pixels.
        turns = (0, 90, 270, 180) if self.try_turns else (0,)
        for turn in turns:
            subject = self._look(kind, image, turn)
            if subject is not None:
                break
        if subject is None or kind != "face" or not self.try_turns:
            return subject
        # The face mesh fits an upside-down face as if upright about a third of the time
        # (measured on LFW photos turned by 180 degrees): a face counts only when the look
        # from the other way up agrees (or finds nothing).
        other = self._look(kind, image, (turn + 180) % 360)
        first, second = (None if s is None else down_direction(s) for s in (subject, other))
        if first is not None and second is not None and turn_for(first) != turn_for(second):
            return None
        return subject

    def add_frame(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> int:
        """Vote with the subjects of one frame; how many voted."""
        self.frames += 1
        return sum(self.vote.add(s) is not None for s in self.subjects(image, truth))

    def result(self) -> RotationEstimate:
        return self.vote.result()

    def close(self) -> None:
        for finder in self._finders.values():
            finder.close()
        self._finders.clear()


@dataclass
class FramesReport:
    """What :func:`check_frames` saw."""

    estimate: RotationEstimate
    frames: int = 0
    seconds: float = 0.0
    sizes: List[Tuple[int, int]] = field(default_factory=list)   # distinct (width, height)


def check_frames(frames: Iterable[Tuple[np.ndarray, Optional[Dict[str, Any]]]], check: CameraCheck,
                 limit: int, stop_early: bool = False) -> FramesReport:
    """Feed up to ``limit`` (image, truth) pairs to ``check``; with ``stop_early``, stop once
    the estimate is known and the winner holds twice :data:`MIN_FRAMES` votes."""
    import time

    start = time.monotonic()
    report = FramesReport(check.result())
    for image, truth in frames:
        if report.frames >= limit:
            break
        report.frames += 1
        size = (int(image.shape[1]), int(image.shape[0]))
        if size not in report.sizes:
            report.sizes.append(size)
        check.add_frame(image, truth)
        if stop_early:
            est = check.result()
            if est.known and check.vote.voters >= 2 * check.vote.min_frames:
                break
    report.seconds = time.monotonic() - start
    report.estimate = check.result()
    return report


def read_frames(reader: Any, seconds: float, frame_timeout: float = 5.0
                ) -> Iterator[Tuple[np.ndarray, Optional[Dict[str, Any]]]]:
    """(image, truth) pairs from a started :class:`~edge_app.sources.FrameReader` for at most
    ``seconds``; a live camera that delivers nothing for ``frame_timeout`` raises its line."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = reader.get(timeout=min(frame_timeout, max(0.05, deadline - time.monotonic())))
        if frame is None:
            if reader.finished:
                return
            if time.monotonic() < deadline:
                raise SourceError(f"{reader.source.uri}: no frame for {frame_timeout:.0f} s; is the camera delivering?")
            return
        yield frame.image, frame.truth


@dataclass
class SourceCheck:
    """The camera check of one source: what it found and how to declare it.

    ``given`` is the turn the source already applies (``?rotate=`` and any correction), so
    ``needed`` is the whole ``?rotate=`` the camera wants (None when unknown)."""

    uri: str
    given: int
    report: FramesReport
    hardware: bool = False   # the source turns in hardware (CSI: nvvidconv's flip-method)

    @property
    def estimate(self) -> RotationEstimate:
        return self.report.estimate

    @property
    def needed(self) -> Optional[int]:
        turn = self.estimate.rotation
        return None if turn is None else combine(self.given, turn)

    @property
    def status(self) -> str:
        """"upright", "turned" (a correction is due) or "unknown"."""
        if self.needed is None:
            return "unknown"
        return "upright" if self.estimate.rotation == 0 else "turned"

    def line(self) -> str:
        """One line for doctor and capture."""
        est, given = self.estimate, self.given
        seen = f"{self.report.frames} frame(s) in {self.report.seconds:.1f} s"
        if self.needed is None:
            return f"unknown: {est.why}; {seen}"
        as_given = f" with rotate={given} as given" if given else ""
        if est.rotation == 0:
            return f"upright{as_given} ({est.evidence()}; {seen})"
        if self.needed == 0:
            return f"turned by the rotate={given} given: the camera is upright without it ({est.evidence()}; {seen})"
        return "turned: needs rotate={}{} ({}; {})".format(
            self.needed, f" (not {given})" if given else "", est.evidence(), seen)

    def fix(self) -> str:
        """What to do, or "" when nothing is to be done."""
        if self.needed is None:
            return ("show a face, or a hand with fingers stretched, to the camera and run again "
                    "(more --seconds); or declare the turn yourself: ?rotate=90|180|270")
        if self.estimate.rotation == 0:
            return ""

        how = " (nvvidconv's flip-method does it)" if self.hardware and self.needed else ""
        return ("{} the source: --source '{}'{}; images already recorded from it as it is now: "
                "rotate: {} in their dataset.yaml".format(
                    "declare it on" if self.needed else "drop rotate= from",
                    uri_with_rotation(self.uri, self.needed or 0), how, self.estimate.rotation))


def check_source(reader: Any, seconds: float = 20.0, frames: int = 300,
                 check: Optional[CameraCheck] = None) -> SourceCheck:
    """Run the camera check on a started reader's frames: up to ``frames`` frames or
    ``seconds``, ending early once the answer is clear. The source's turns so far count as
    given (see :class:`SourceCheck`)."""
    own = check is None
    check = check or CameraCheck()
    source = reader.source
    given = int(getattr(source, "total_rotation", 0))
    try:
        report = check_frames(read_frames(reader, seconds), check, frames, stop_early=True)
    finally:
        if own:
            check.close()
    return SourceCheck(source.uri, given, report,
                       hardware=bool(getattr(source, "turns_in_hardware", False)))


class CameraWatch:
    """The camera check beside a live preview (the studio), self-contained.

    :meth:`offer` the frames shown, from any thread; it never waits: a worker thread checks
    the newest offered frame, at most ``rate`` a second (detectors cost tens of ms). Once the
    rotation is known it is kept: checking stops, and with ``source`` given, the correction
    is applied to it (:meth:`FrameSource.correct`), so every later frame comes upright.
    :meth:`status` is a JSON-ready dict; after ``max_frames`` checked frames (or ``seconds``)
    without a clear answer it decides on what it has, often "unknown", and stops
    (:meth:`restart` looks again)."""

    def __init__(self, source: Any = None, kinds: Sequence[str] = ("face", "hand"),
                 provider: str = "auto", rate: float = 3.0, max_frames: int = 200,
                 seconds: Optional[float] = None, check: Optional[CameraCheck] = None) -> None:
        import threading
        import time

        self.source = source
        self.rate, self.max_frames = rate, max_frames
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self._check = check or CameraCheck(kinds, provider)
        self._cond = threading.Condition()
        self._pending: Optional[Tuple[np.ndarray, Optional[Dict[str, Any]]]] = None
        self._state = "checking"
        self._found: Optional[SourceCheck] = None
        self._closed = False
        self._given = int(getattr(source, "total_rotation", 0))
        self._thread = threading.Thread(target=self._run, name="camera-watch", daemon=True)
        self._thread.start()

    def offer(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> None:
        """Hand over a frame as shown (after any correction); dropped when busy or done."""
        with self._cond:
            if self._state == "checking" and not self._closed:
                self._pending = (image, truth)
                self._cond.notify()

    @property
    def rotation(self) -> Optional[int]:
        """The whole clockwise turn the camera needs (``?rotate=``), once known."""
        found = self._found
        return None if found is None else found.needed

    def status(self) -> Dict[str, Any]:
        """{"state": "checking" | "upright" | "turned" | "unknown", "rotation": the
        ``?rotate=`` the camera needs or None, "applied": the turn now applied to the source,
        "line": one line for people, "fix": what to do or ""}."""
        with self._cond:
            state, found = self._state, self._found
            frames = self._check.frames
            est = self._check.result()
        report = FramesReport(est, frames=frames)
        current = found or SourceCheck(getattr(self.source, "uri", "camera"), self._given, report)
        line = (f"checking the camera's rotation: show a face or an open hand ({est.evidence()})" if state == "checking" else current.line())
        return {"state": state, "rotation": current.needed if state != "checking" else None,
                "applied": int(getattr(self.source, "total_rotation", 0)), "line": line,
                "fix": "" if state == "checking" else current.fix()}

    @property
    def done(self) -> bool:
        """Whether the check has decided (the correction, if any, is applied)."""
        return self._state != "checking"

    def restart(self, seconds: Optional[float] = None) -> None:
        """Forget the votes and look again (a camera moved)."""
        import time

        with self._cond:
            self.deadline = None if seconds is None else time.monotonic() + seconds
            self._check.vote = RotationVote(self._check.vote.min_frames, self._check.vote.min_share)
            self._check.frames = 0
            self._found, self._state = None, "checking"
            self._given = int(getattr(self.source, "total_rotation", 0))
            if not self._thread.is_alive() and not self._closed:   # a detector error ended it
                import threading

                self._thread = threading.Thread(target=self._run, name="camera-watch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        import time

        while True:
            with self._cond:
                while not self._closed and (self._pending is None or self._state != "checking"):
                    self._cond.wait(0.5)
                if self._closed:
                    return
                image, truth = self._pending   # type: ignore[misc]
                self._pending = None
            start = time.monotonic()
            try:
                subjects = self._check.subjects(image, truth)   # slow: outside the lock
            except Exception as exc:   # a broken detector must not take the preview down
                log.warning("camera check stopped: %s", exc)
                with self._cond:
                    self._state = "unknown"
                return
            with self._cond:
                self._check.frames += 1
                for subject in subjects:
                    self._check.vote.add(subject)
                self._settle()
            time.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - start)))

    def _settle(self) -> None:
        """Called with the lock held: decide once the evidence is enough."""
        import time

        est = self._check.result()
        done = est.known and self._check.vote.voters >= 2 * self._check.vote.min_frames
        late = self.deadline is not None and time.monotonic() > self.deadline
        if not done and not late and self._check.frames < self.max_frames:
            return
        found = SourceCheck(getattr(self.source, "uri", "camera"), self._given,
                            FramesReport(est, frames=self._check.frames))
        if found.needed is not None and est.rotation and self.source is not None:
            # Keep it: the source turns every later frame (the check saw frames as shown).
            self.source.correct(combine(self.source.correction, est.rotation))
            log.info("camera check: %s; corrected from now on", found.line())
        self._found, self._state = found, found.status
        self._pending = None

    def close(self) -> None:
        """Stop the worker and release the detectors."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(5.0)
        if not self._thread.is_alive():   # else the worker is inside a detector: never pull it away
            self._check.close()
