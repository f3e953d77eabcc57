"""Write labelled images into a dataset folder, atomically, from the capture tool or an import.

An image is written (temp file, fsync, rename) before its label row, so a crash or a full disk
can leave at worst an image without a label (reported by ``data info``), never a label without
its image or half a file.
"""
from __future__ import annotations

import errno
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from edge_app.dataset.atomic import append_line, atomic_write_bytes, atomic_write_text, json_text
from edge_app.dataset.formats import read_dataset
from edge_app.dataset.meta import meta_for, read_meta, write_meta
from edge_app.dataset.samples import LABELS_FILE, META_FILE, SUBJECTS_FILE
from edge_app.errors import DatasetError
from edge_app.opencv import cv2
from edge_app.tasks.spec import TaskSpec

Points = Union[Mapping[str, Sequence[float]], np.ndarray]


def _unique_name(ext: str = ".jpg") -> str:
    """A sortable, collision-free file name: capture time plus a random suffix."""
    now = time.time()
    return "{}-{:03d}_{}{}".format(time.strftime("%Y%m%d-%H%M%S", time.localtime(now)),
                                   int(now * 1000) % 1000, uuid.uuid4().hex[:8], ext)


class DatasetWriter:
    """Saves images with labels into ``root`` in this project's layout for ``task``."""

    def __init__(self, root: Union[str, Path], task: TaskSpec, quality: int = 95) -> None:
        self.root = Path(root).expanduser()
        self.task = task
        self.quality = quality
        self.layout = task.task_kind.dataset_layout
        self._prepare()
        self.counts: Dict[str, int] = self._existing_counts()
        self.saved = 0   # images written by this writer
        # Held while a sample and its label row are written, so that an edit of the labels
        # file (edge_app.dataset.edit) never interleaves with an append.
        self.lock = threading.Lock()

    def _prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"{self.root}: cannot create the folder ({exc.strerror})")
        if (self.root / META_FILE).is_file():
            meta = read_meta(self.root)
            key = self.task.task_kind.labels_key
            if meta.get("kind") != self.task.kind or [str(v) for v in meta.get(key, [])] != list(
                    self.task.labels):
                raise DatasetError("{}: already holds a dataset for task '{}' ({}: {}); use another "
                                   "--out for task '{}'".format(
                                       self.root, meta.get("task"), key,
                                       ", ".join(str(v) for v in meta.get(key, [])), self.task.name))
        elif any(p for p in self.root.iterdir() if not p.name.startswith(".")):
            raise DatasetError(f"{self.root}: the folder is not empty and is not an edge-app dataset; choose "
                               "an empty or new folder (or import it: edge-app data import)"
                               )
        else:
            write_meta(self.root, meta_for(self.task))
        self._layout()

    def _layout(self) -> None:
        """Create what the layout needs and is not there: the labels file with its header and
        the image folders. Run at start (a first capture killed right after ``dataset.yaml``
        leaves only that file) and before each save (a class folder removed meanwhile)."""
        try:
            if self.layout == "csv":
                if not (self.root / LABELS_FILE).exists():
                    header = ["image"] + [f"{p}_{a}" for p in self.task.points for a in "xy"]
                    atomic_write_text(self.root / LABELS_FILE, ",".join(header) + "\n")
                (self.root / "images").mkdir(exist_ok=True)
            else:
                for name in self.task.classes:
                    (self.root / name).mkdir(exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"{exc.filename or self.root}: cannot create it ({exc.strerror or exc}); check the dataset folder")

    def recount(self) -> None:
        """Counts from what is on disk (after samples were removed)."""
        self.counts = self._existing_counts()

    def _existing_counts(self) -> Dict[str, int]:
        return read_dataset(self.root).counts()

    def save(self, image: np.ndarray, label: Optional[str] = None,
             points: Optional[Points] = None, subject: Optional[Dict[str, Any]] = None,
             encoded: Optional[bytes] = None, name: Optional[str] = None) -> Path:
        """Write one labelled image; return its path. ``points`` are normalised (0..1), by name
        or in the task's order; ``encoded`` saves those bytes as they are and ``name`` keeps a
        file name (imports)."""
        data = encoded if encoded is not None else self._encode(image)
        with self.lock:
            return self._save(data, label, points, subject, name)

    def _save(self, data: bytes, label: Optional[str], points: Optional[Points],
              subject: Optional[Dict[str, Any]], name: Optional[str]) -> Path:
        self._layout()
        try:
            if self.layout == "csv":
                path = self._save_points(data, points, name)
            else:
                path = self._save_class(data, label, name)
            if subject is not None:
                rel = path.relative_to(self.root).as_posix()
                append_line(self.root / SUBJECTS_FILE, json_text(dict(subject, image=rel)))
            self.saved += 1
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DatasetError(f"{self.root}: disk full; the {self.saved} image(s) saved before are complete; free "
                                   "space and capture again")
            raise DatasetError(f"{exc.filename or self.root}: cannot write ({exc.strerror or exc})")
        return path

    def _encode(self, image: np.ndarray) -> bytes:
        cv = cv2()
        ok, buf = cv.imencode(".jpg", image, [cv.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise DatasetError("could not encode the image as JPEG")
        return buf.tobytes()

    def _target(self, folder: Path, name: Optional[str]) -> Path:
        if name is None:
            return folder / _unique_name()
        path = folder / name
        while path.exists():   # never overwrite: keep the name, add a short suffix
            path = folder / f"{Path(name).stem}_{uuid.uuid4().hex[:6]}{Path(name).suffix}"
        return path

    def _save_class(self, data: bytes, label: Optional[str], name: Optional[str]) -> Path:
        if label not in self.task.classes:
            raise DatasetError("'{}' is not a class of task '{}' ({})".format(
                label, self.task.name, ", ".join(self.task.classes)))
        path = atomic_write_bytes(self._target(self.root / label, name), data)
        self.counts[label] = self.counts.get(label, 0) + 1
        return path

    def _save_points(self, data: bytes, points: Optional[Points], name: Optional[str]) -> Path:
        arr = self._points_array(points)
        path = atomic_write_bytes(self._target(self.root / "images", name), data)
        cells = ["" if np.isnan(v) else f"{v:.6f}" for v in arr.reshape(-1)]
        append_line(self.root / LABELS_FILE, ",".join(["images/" + path.name] + cells))
        for name, (x, _) in zip(self.task.points, arr):
            if not np.isnan(x):
                self.counts[name] = self.counts.get(name, 0) + 1
        return path

    def _points_array(self, points: Optional[Points]) -> np.ndarray:
        if points is None:
            raise DatasetError(f"task '{self.task.name}' needs points to save an image")
        if isinstance(points, Mapping):
            unknown = [k for k in points if k not in self.task.points]
            if unknown:
                raise DatasetError("'{}' is not a point of task '{}' ({})".format(
                    unknown[0], self.task.name, ", ".join(self.task.points)))
            arr = np.array([points.get(p, (np.nan, np.nan)) for p in self.task.points], float)
        else:
            arr = np.asarray(points, dtype=np.float64).reshape(len(self.task.points), 2)
        if np.isnan(arr).all():
            raise DatasetError("no point placed: click on the image to place at least one")
        return arr


class Saver(Protocol):
    """What :class:`AsyncWriter` runs: a :class:`DatasetWriter`, or another writer of frames
    (the live loop's collected frames, :mod:`edge_app.runtime.collect`)."""

    def save(self, image: np.ndarray, **labels: Any) -> Path:
        ...


class AsyncWriter:
    """Runs a :class:`DatasetWriter` (or any :class:`Saver`) in a thread so saving never blocks
    the preview or the live loop.
    ``submit`` never waits: when the queue is full the shot is refused (and counted).
    Shutdown: :meth:`close` queues a sentinel, the thread drains what is queued and exits."""

    _STOP = object()

    def __init__(self, writer: Any, maxsize: int = 64,
                 find_subject: Optional[Callable[[np.ndarray], Optional[Dict[str, Any]]]] = None) -> None:
        self.writer: Any = writer   # a DatasetWriter (its counts and lock are read) or a Saver
        # Runs in the writer thread (the detector takes tens of ms): the preview never waits.
        self.find_subject = find_subject
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._pending = 0   # queued or being written (the queue alone misses the one in hand)
        self._count = threading.Lock()
        self.saved = 0
        self.refused = 0
        self.error: Optional[BaseException] = None
        self.last_path: Optional[Path] = None
        self._thread = threading.Thread(target=self._run, name="dataset-writer", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray, **labels: Any) -> bool:
        """Queue one shot (the image is copied); False if refused (queue full or writer failed)."""
        if self.error is not None:
            return False
        with self._count:
            self._pending += 1
        try:
            self._queue.put_nowait((image.copy(), labels))
            return True
        except queue.Full:
            with self._count:
                self._pending -= 1
            self.refused += 1
            return False

    @property
    def pending(self) -> int:
        """Shots not written yet: queued, or in the writer's hands."""
        return self._pending

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self.error is not None:   # drain; nothing more is written after a failure
                with self._count:
                    self._pending -= 1
                continue
            image, labels = item
            try:
                if labels.get("subject") is None and self.find_subject is not None:
                    labels["subject"] = self.find_subject(image)
                self.last_path = self.writer.save(image, **labels)
                self.saved += 1
            except BaseException as exc:
                self.error = exc
            finally:
                with self._count:
                    self._pending -= 1

    def close(self, timeout: Optional[float] = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        self._queue.put(self._STOP)
        self._thread.join(timeout)
