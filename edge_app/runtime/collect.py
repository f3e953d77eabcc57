"""``edge-app run --collect DIR``: keep the frames a model finds hard, for review in the studio.

Per frame and per model the loop's ``collect`` stage asks :class:`ModelCollector` whether to
keep the frame, and why: the model is unsure (a low top score or a small margin between the
best two classes), its answer flips within a few frames, its points jump, the subject was
lost, or a small random sample (to see drift). Kept frames are rate-limited per model and
handed to the capture tool's background writer (:class:`~edge_app.dataset.writer.AsyncWriter`,
which never blocks: a full queue drops the frame), so the loop never waits on the disk.

On disk, one folder per model name under DIR::

    DIR/<model>/model.json          the model's task, labels and bundle (what the review needs)
    DIR/<model>/<time>_<id>.jpg     the frame as the camera gave it (before any correction)
    DIR/<model>/collected.jsonl     one line per frame: file, model, time, reason, uncertainty,
                                    prediction (with scores), subject box/landmarks, truth (sim)

Images are written atomically (temp file, fsync, rename) before their line, so a crash leaves
at worst an image without a line, never a line without its image. Each folder is capped in
size: past the cap the oldest frames are removed (with their lines) first.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from edge_app.dataset.atomic import append_line, atomic_write_bytes, atomic_write_text, json_text
from edge_app.dataset.writer import AsyncWriter
from edge_app.errors import UserError
from edge_app.model.results import ClassResult, NoSubject, PointsResult, Result
from edge_app.opencv import cv2

log = logging.getLogger(__name__)

COLLECTED = "collected.jsonl"
MODEL_FILE = "model.json"
REVIEWED = "reviewed.jsonl"   # written by the studio's review (edge_app.studio.review)
REASONS = ("lost", "flip", "jump", "unsure", "drift")
FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def folder_name(model: str) -> str:
    """A model's name as a folder name: letters, digits, ``_ . -`` only (never a path)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("._-")[:64]
    return name or "model"


@dataclass(frozen=True)
class CollectPolicy:
    """When a frame is worth a person's look, and how many to keep."""

    min_confidence: float = 0.6     # top class score below this: unsure
    min_margin: float = 0.25        # best minus second-best below this: unsure
    flip_window: int = 6            # frames: two changes of answer within them is a flip
    jump: float = 0.08              # a point moving this far (fraction of the frame) in one frame
    drift_rate: float = 0.01        # share of the other frames kept at random
    min_interval: float = 0.5       # seconds between two kept frames of one model
    max_bytes: int = 500 * 1024 * 1024   # per model folder; the oldest frames go first
    quality: int = 90               # JPEG quality of the kept frames


def uncertainty(result: Result) -> float:
    """How unsure the model was, 0 (sure) to 1: one minus the margin between its two best
    classes; a lost subject is 1; points (no scores) 0.5."""
    if isinstance(result, NoSubject):
        return 1.0
    if isinstance(result, ClassResult):
        scores = np.sort(np.asarray(result.scores, np.float64))[::-1]
        second = float(scores[1]) if len(scores) > 1 else 0.0
        return float(np.clip(1.0 - (float(scores[0]) - second), 0.0, 1.0))
    return 0.5


class ModelCollector:
    """One model's memory of its recent answers, and the decision to keep a frame."""

    def __init__(self, policy: CollectPolicy, seed: Optional[int] = None) -> None:
        self.policy = policy
        self.labels: Deque[Optional[str]] = collections.deque(maxlen=max(2, policy.flip_window))
        self.points: Optional[np.ndarray] = None
        self.had_subject = False
        self.last_kept = -1e18
        self.random = random.Random(seed)
        self.kept: Dict[str, int] = {r: 0 for r in REASONS}
        self.limited = 0   # hard frames passed over by the rate limit

    def reason(self, result: Result, now: float) -> Optional[str]:
        """Why this frame should be kept (one of :data:`REASONS`), or None. Updates the memory
        (every frame, kept or not) and applies the rate limit."""
        why = self._judge(result)
        if why is None and self.random.random() < self.policy.drift_rate:
            why = "drift"
        if why is None:
            return None
        if now - self.last_kept < self.policy.min_interval:
            self.limited += 1
            return None
        self.last_kept = now
        self.kept[why] += 1
        return why

    def _judge(self, result: Result) -> Optional[str]:
        p = self.policy
        if isinstance(result, NoSubject):
            lost, self.had_subject = self.had_subject, False
            self.labels.append(None)
            self.points = None
            return "lost" if lost else None
        self.had_subject = True
        if isinstance(result, ClassResult):
            self.labels.append(result.label)
            changes = sum(1 for a, b in zip(list(self.labels)[:-1], list(self.labels)[1:])
                          if a is not None and b is not None and a != b)
            if changes >= 2 and self.labels[-1] != self.labels[-2]:
                return "flip"
            scores = np.sort(np.asarray(result.scores, np.float64))[::-1]
            second = float(scores[1]) if len(scores) > 1 else 0.0
            if float(scores[0]) < p.min_confidence or float(scores[0]) - second < p.min_margin:
                return "unsure"
            return None
        if isinstance(result, PointsResult):
            pts = np.asarray(result.points, np.float64).reshape(-1, 2)
            before, self.points = self.points, pts
            if before is not None and before.shape == pts.shape:
                moved = np.linalg.norm(pts - before, axis=1)
                if np.nanmax(moved) > p.jump:
                    return "jump"
        return None


class CollectFolder:
    """Writes one model's kept frames (runs in the writer's thread): the JPEG atomically, then
    its line; past ``max_bytes`` the oldest frames and their lines are removed."""

    def __init__(self, root: Path, model: str, meta: Dict[str, Any], policy: CollectPolicy) -> None:
        self.root, self.model, self.policy = Path(root), model, policy
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.root / MODEL_FILE, json_text(meta, indent=1) + "\n")
        except OSError as exc:
            raise UserError(f"--collect {self.root.parent}: cannot write there ({exc.strerror or exc}); pick a writable folder")
        self.sizes = self._existing()   # file name -> bytes, oldest first
        self.bytes = sum(self.sizes.values())
        self.saved = 0
        self.removed = 0

    def _existing(self) -> collections.OrderedDict[str, int]:
        sizes: collections.OrderedDict[str, int] = collections.OrderedDict()
        for row in read_lines(self.root / COLLECTED):
            path = self.root / str(row.get("file", ""))
            if path.is_file():
                sizes[path.name] = path.stat().st_size
        return sizes

    def save(self, image: np.ndarray, record: Dict[str, Any]) -> Path:
        """Encode and write one frame and its line (called by :class:`AsyncWriter`)."""
        ok, buf = cv2().imencode(".jpg", image, [cv2().IMWRITE_JPEG_QUALITY, self.policy.quality])
        if not ok:
            raise UserError("could not encode a collected frame as JPEG")
        data = buf.tobytes()
        path = atomic_write_bytes(self.root / record["file"], data)
        append_line(self.root / COLLECTED, json_text(record))
        self.sizes[path.name] = len(data)
        self.bytes += len(data)
        self.saved += 1
        if self.bytes > self.policy.max_bytes:
            self._prune()
        return path

    def _prune(self) -> None:
        """Remove the oldest frames until the folder is at 90% of its cap (so that pruning,
        which rewrites the lines file, happens once per many frames, not at every one)."""
        target = int(self.policy.max_bytes * 0.9)
        gone = set()
        while self.sizes and self.bytes > target:
            name, size = self.sizes.popitem(last=False)
            self.bytes -= size
            gone.add(name)
            try:
                (self.root / name).unlink()
            except OSError:
                pass
        kept = [row for row in read_lines(self.root / COLLECTED) if row.get("file") not in gone]
        atomic_write_text(self.root / COLLECTED, "".join(json_text(r) + "\n" for r in kept))
        self.removed += len(gone)


class _Saver:
    """What :class:`AsyncWriter` drives: ``save(image, **labels)`` to the model's folder."""

    def __init__(self, folders: Dict[str, CollectFolder]) -> None:
        self.folders = folders

    def save(self, image: np.ndarray, folder: str, record: Dict[str, Any]) -> Path:
        return self.folders[folder].save(image, record)


def read_lines(path: Path) -> List[Dict[str, Any]]:
    """The JSON lines of ``path`` (none when it is missing); a torn or bad line is skipped."""
    return [row for _, row, problem in _numbered_rows(path) if problem is None]


def read_collected(path: Path) -> List[Dict[str, Any]]:
    """The rows of a ``collected.jsonl`` fit for the review: a line that is not a JSON object
    of the shape :meth:`Collector._record` writes (a torn line, an edited one: an
    ``"uncertainty": "abc"``) is skipped with one warning naming the file and line, once."""
    rows = []
    for n, row, problem in _numbered_rows(path):
        problem = problem or collected_problem(row)
        if problem is None:
            rows.append(row)
        elif (str(path), n, problem) not in _WARNED:
            if len(_WARNED) < 10000:
                _WARNED.add((str(path), n, problem))
            log.warning("%s:%d: %s; row skipped", path, n, problem)
    return rows


_WARNED: Set[Tuple[str, int, str]] = set()   # read again at every poll of the page: warn once


def _numbered_rows(path: Path) -> Iterator[Tuple[int, Any, Optional[str]]]:
    """(line number, row, why it is not a JSON object or None) for each non-blank line.
    NaN, Infinity and numbers too large for a float are not JSON: they are refused here, so
    that nothing read can make a JSON answer fail later."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, RecursionError):   # torn, or nested past the stack
            yield n, None, "not a whole JSON row (a write cut short, or edited by hand?)"
            continue
        yield n, row, None if isinstance(row, dict) else "not a JSON object"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large")
    return value


def _number(value: Any) -> bool:
    """A finite JSON number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def collected_problem(row: Dict[str, Any]) -> Optional[str]:
    """Why a ``collected.jsonl`` row cannot be reviewed (None when it can): its file a name,
    its uncertainty and time numbers, its prediction an object, its subject a box and
    landmarks of numbers, its turn a quarter turn."""
    name = row.get("file")
    if not isinstance(name, str) or not name:
        return "'file' is not a file name"
    for key in ("uncertainty", "time"):
        if row.get(key) is not None and not _number(row[key]):
            return f"'{key}' is not a number"
    if row.get("reason") is not None and not isinstance(row["reason"], str):
        return "'reason' is not text"
    if row.get("prediction") is not None and not isinstance(row["prediction"], dict):
        return "'prediction' is not an object"
    turn = row.get("rotate")
    if turn is not None and (isinstance(turn, bool) or turn not in (0, 90, 180, 270)):
        return "'rotate' is not 0, 90, 180 or 270"
    subject = row.get("subject")
    if subject is not None:
        why = _subject_problem(subject)
        if why:
            return f"'subject' {why}"
    return None


def _subject_problem(subject: Any) -> Optional[str]:
    if not isinstance(subject, dict):
        return "is not an object"
    box = subject.get("box")
    if box is not None and not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
        return "box is not four numbers"
    marks = subject.get("landmarks")
    if marks is not None and not (isinstance(marks, list) and all(
            isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p) for p in marks)):
        return "landmarks are not [x, y] numbers"
    if subject.get("score") is not None and not _number(subject["score"]):
        return "score is not a number"
    for key in ("kind", "source", "handedness"):
        if subject.get(key) is not None and not isinstance(subject[key], str):
            return f"{key} is not text"
    return None


@dataclass
class CollectStats:
    """What collecting did, per model: kept frames by reason, rate-limited and dropped ones."""

    kept: Dict[str, Dict[str, int]] = field(default_factory=dict)
    limited: Dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    written: int = 0
    removed: int = 0
    error: Optional[BaseException] = None


class Collector:
    """The loop's ``collect`` stage for every model it runs. ``observe`` decides and queues in
    well under a millisecond; the encoding and writing happen in the writer's thread.
    Shutdown: :meth:`close` drains the queue and stops the thread."""

    def __init__(self, root: Path, policy: Optional[CollectPolicy] = None,
                 seed: Optional[int] = None, queue_size: int = 32) -> None:
        self.root = Path(root).expanduser()
        self.policy = policy or CollectPolicy()
        self.seed = seed
        self.models: Dict[str, ModelCollector] = {}
        self.folders: Dict[str, CollectFolder] = {}
        self.writer = AsyncWriter(_Saver(self.folders), maxsize=queue_size)
        self._lock = threading.Lock()   # folders are added from the loop, read by the writer

    def add_model(self, name: str, info: Any) -> str:
        """Register a model by name (its folder); ``info`` is its ModelInfo. Returns the folder."""
        folder = folder_name(name)
        if folder in self.models:
            return folder
        bundle = Path(info.bundle).expanduser() if info.bundle else None
        meta = {"model": name, "task": info.task.to_dict(), "labels": list(info.task.labels),
                "kind": info.task.kind, "bundle": str(bundle.resolve()) if bundle else None,
                # the link the loop watches (runs/current): where a better model goes
                "link": str(bundle.absolute()) if bundle is not None and bundle.is_symlink() else None,
                "input": info.describe_input()}
        with self._lock:
            self.folders[folder] = CollectFolder(self.root / folder, name, meta, self.policy)
        self.models[folder] = ModelCollector(self.policy, self.seed)
        return folder

    def observe(self, frame: Any, names: Sequence[str], results: Sequence[Result],
                subjects: Sequence[Optional[Dict[str, Any]]], bundles: Sequence[str] = ()) -> int:
        """Consider this frame for each model (``names[i]`` gave ``results[i]`` with the subject
        ``subjects[i]``, JSON form); queue those kept. Returns how many were queued."""
        now = time.monotonic()
        queued = 0
        for i, (name, result) in enumerate(zip(names, results)):
            folder = folder_name(name)
            model = self.models.get(folder)
            if model is None or result is None:
                continue
            why = model.reason(result, now)
            if why is None:
                continue
            image, turn = raw_image(frame)
            record = self._record(frame, name, why, result, subjects[i] if i < len(subjects) else None,
                                  bundles[i] if i < len(bundles) else "")
            if turn:   # the review turns the raw JPEG the same way before it joins a dataset
                record["rotate"] = turn
            if self.writer.submit(image, folder=folder, record=record):
                queued += 1
        return queued

    def _record(self, frame: Any, name: str, why: str, result: Result,
                subject: Optional[Dict[str, Any]], bundle: str) -> Dict[str, Any]:
        stamp = time.time()
        record: Dict[str, Any] = {
            "file": "{}-{:03d}_{}.jpg".format(time.strftime("%Y%m%d-%H%M%S", time.localtime(stamp)),
                                              int(stamp * 1000) % 1000, frame.id),
            "model": name, "time": round(stamp, 3), "frame": frame.id, "reason": why,
            "uncertainty": round(uncertainty(result), 4), "prediction": result.to_dict(),
            "subject": subject, "size": [int(frame.image.shape[1]), int(frame.image.shape[0])]}
        if bundle:
            record["bundle"] = bundle
        if frame.truth is not None:
            record["truth"] = frame.truth
        return record

    def stats(self) -> CollectStats:
        """Counts so far (safe to read while collecting)."""
        out = CollectStats(dropped=self.writer.refused, written=self.writer.saved,
                           error=self.writer.error)
        for folder, model in self.models.items():
            out.kept[folder] = dict(model.kept)
            out.limited[folder] = model.limited
            out.removed += self.folders[folder].removed
        return out

    def close(self) -> None:
        """Write what is queued, then stop the writer's thread."""
        self.writer.close()


def raw_image(frame: Any) -> Tuple[np.ndarray, int]:
    """The frame as the camera gave it, and the clockwise turn (degrees) that makes it the
    frame the model saw. ROTATION HOOK: a source that corrects the camera (``?rotate=``) keeps
    the uncorrected image in ``frame.raw`` and the turn in ``frame.rotation``; the collected
    JPEG is the raw one, and the review applies the turn before a frame joins the dataset
    (subject boxes and landmarks are stored in the turned frame's coordinates)."""
    raw = getattr(frame, "raw", None)
    if raw is None:   # not turned, or turned by the device itself (CSI): nothing rawer exists
        return frame.image, 0
    return raw, int(getattr(frame, "raw_turn", 0) or 0) % 360
