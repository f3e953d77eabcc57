"""The studio's Review view without its web layer: the frames ``edge-app run --collect DIR``
kept, most uncertain first; confirming or correcting one puts it in the dataset with its
subject (or, for the first and then one in five of each class, a held-back set that
judges the next model); skipped ones can be deleted (to ``.deleted/`` in their folder, as
the dataset's deletes do).

After a retrain (the studio's training job: ``edge-app train`` in a child process) the new
bundle and the current one are scored on the held-back frames with the on-device backends;
only a better new model is made current: the ``current`` link is switched atomically and the
one it left stays as ``previous`` for a rollback. A loop running ``--model .../current``
picks it up (:mod:`edge_app.runtime.swap`).

Threads: the comparison runs in one background thread at a time, started by :meth:`Review.tick`
(the page's poll) and joined by :meth:`Review.close`."""
from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from edge_app.backends.registry import choose_backend
from edge_app.camera.rotation import rotate_image
from edge_app.dataset.atomic import append_line, json_text
from edge_app.dataset.edit import FILE_RE, TRASH
from edge_app.dataset.links import LINK_FIX, Inside, real_inside
from edge_app.dataset.verify import META_NAME, declared_rotation, read_image
from edge_app.dataset.writer import DatasetWriter
from edge_app.errors import ImageError, UserError
from edge_app.image_files import decode_image
from edge_app.model.info import load_model_info
from edge_app.model.results import DECODERS, ClassResult, PointsResult
from edge_app.opencv import cv2
from edge_app.runtime.collect import COLLECTED, FOLDER_RE, MODEL_FILE, REVIEWED, read_collected, read_lines
from edge_app.runtime.serve import shorten
from edge_app.runtime.swap import rollback, switch_link
from edge_app.subject.base import Subject
from edge_app.subject.stage import place
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

HOLDOUT_EVERY = 5          # one confirmed frame in five is held back to judge the next model
HOLDOUT_INDEX = "index.jsonl"
MIN_HOLDOUT = 3            # fewer held-back frames than this: no comparison is made
LIST_LIMIT = 200           # frames listed at once (the most uncertain)


class NotFound(UserError):
    """A collected frame that is not there (404)."""

    status = 404


class LinkOut(UserError):
    """A file that is a link to somewhere outside the dataset or collected folder (403): it
    is neither served nor copied."""

    status = 403


def torch_available() -> bool:
    """Whether this machine can train (torch installed), said without importing it."""
    return importlib.util.find_spec("torch") is not None


def held_back(confirmed: int, held: int) -> bool:
    """Whether the next confirmed frame of a class goes to the held-back set, given how many
    of that class were confirmed and held back so far: the first, then one in
    :data:`HOLDOUT_EVERY`, so every class the review saw is in the comparison from the start."""
    return held * HOLDOUT_EVERY < confirmed + 1


class Review:
    """Everything the Review view drives for ``task`` over the collected folder ``root``.
    ``dataset`` writes confirmed frames; ``link`` is the current-model link (None: the one the
    collecting loop watched, from the folders' model.json); ``job`` is the studio's training job."""

    def __init__(self, root: Path, task: TaskSpec, dataset: DatasetWriter, job: Any,
                 link: Optional[Path] = None, holdout: Optional[Path] = None) -> None:
        self.root, self.task, self.dataset, self.job = Path(root).expanduser(), task, dataset, job
        self._link = Path(link) if link is not None else None
        self.holdout_root = Path(holdout) if holdout else self.root / f".holdout-{task.name}"
        self._holdout: Optional[DatasetWriter] = None
        self._lock = threading.RLock()
        self.compare: Dict[str, Any] = {"state": "idle"}
        self._compared: Optional[str] = None   # the bundle last compared (or being compared)
        self._thread: Optional[threading.Thread] = None
        self.last_trained: Optional[Path] = None
        self._links_said: Set[Tuple[str, str]] = set()

    # -- what is there ----------------------------------------------------------------------
    def folders(self) -> Dict[str, Path]:
        """The collected model folders of this task (a folder of another task is not listed)."""
        out: Dict[str, Path] = {}
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.iterdir()):
            if not path.is_dir() or not FOLDER_RE.match(path.name):
                continue
            meta = _meta(path)
            task, labels = meta.get("task"), meta.get("labels")
            if isinstance(task, dict) and task.get("name") == self.task.name and \
                    isinstance(labels, list) and [str(v) for v in labels] == list(self.task.labels):
                out[path.name] = path
        return out

    def _reviewed(self, folder: Path) -> Dict[str, Dict[str, Any]]:
        """Each file's latest review action in ``folder``."""
        return {str(r.get("file")): r for r in read_lines(folder / REVIEWED)}

    def items(self, limit: int = LIST_LIMIT) -> List[Dict[str, Any]]:
        """The frames still to review, most uncertain first; skipped ones after them."""
        found: List[Dict[str, Any]] = []
        inside = Inside(self.root)
        for model, folder in self.folders().items():
            done = self._reviewed(folder)
            for row in read_collected(folder / COLLECTED):
                name = str(row.get("file", ""))
                action = done.get(name, {}).get("action")
                if action in ("confirmed", "deleted") or not FILE_RE.match(name):
                    continue
                if not (folder / name).is_file() or self._link_out(folder, name, inside):
                    continue
                found.append({"model": model, "file": name, "reason": row.get("reason"),
                              "uncertainty": row.get("uncertainty", 0.0),
                              "prediction": row.get("prediction"), "subject": row.get("subject"),
                              "time": row.get("time"), "skipped": action == "skipped"})
        found.sort(key=lambda r: (r["skipped"], -float(r["uncertainty"] or 0.0), -(r["time"] or 0)))
        return found[:limit]

    def _row(self, model: str, name: str) -> Tuple[Path, Dict[str, Any]]:
        """The folder and collected line of frame ``model/name``; names are checked against the
        folders and lines on disk, so a request cannot reach anything else."""
        folder = self.folders().get(model) if FOLDER_RE.match(model or "") else None
        if folder is None or not FILE_RE.match(name or ""):
            raise NotFound("no collected frame {}/{}".format(shorten(model or ""), shorten(name or "")))
        for row in read_collected(folder / COLLECTED):
            if row.get("file") == name and (folder / name).is_file():
                if self._link_out(folder, name):
                    raise LinkOut(f"{shorten(model)}/{shorten(name)} is a link to a file outside the "
                                  f"collected folder; it is neither shown nor copied ({LINK_FIX})")
                return folder, row
        raise NotFound(f"no collected frame {shorten(model)}/{shorten(name)}")

    def _link_out(self, folder: Path, name: str, inside: Optional[Inside] = None) -> bool:
        """Whether frame ``folder/name`` is a link that leads out of the collected folder (said
        once in the log, where the review found it)."""
        if (inside or Inside(self.root))(folder / name) is not None:
            return False
        if (folder.name, name) not in self._links_said:
            self._links_said.add((folder.name, name))
            log.warning("review: %s is a link to a file outside %s: not shown, not copied (%s)",
                        folder / name, self.root, LINK_FIX)
        return True

    def _frame_bytes(self, folder: Path, name: str) -> bytes:
        """The bytes of a frame, read through its real path once more checked to be inside the
        collected folder (never through a link swapped in since)."""
        real = real_inside(folder / name, self.root)
        if real is None:
            raise LinkOut(f"{shorten(name)} is a link to a file outside the collected folder ({LINK_FIX})")
        return real.read_bytes()

    def image(self, model: str, name: str) -> bytes:
        """The JPEG of a collected frame as the model saw it: a frame the loop turned
        (``?rotate=``) is stored raw and shown turned, so the guess and the points drawn on it
        line up, and points dragged on it are in the frame the dataset stores."""
        folder, row = self._row(model, name)
        try:
            return _upright(self._frame_bytes(folder, name), row.get("rotate"))
        except OSError as exc:
            raise NotFound(f"{shorten(name)}: {exc.strerror or exc}")

    # -- review actions ---------------------------------------------------------------------
    def confirm(self, model: str, name: str, label: Optional[str] = None,
                points: Optional[Dict[str, Any]] = None) -> str:
        """Confirm (or correct) a frame: ``label`` for classes, ``points`` (name -> [x, y] in
        0..1) for point tasks. It joins the dataset with its subject, or the held-back set;
        returns which ("dataset" or "held back")."""
        folder, row = self._row(model, name)
        label, pts = self._check_answer(label, points)
        subject = row.get("subject")
        try:
            raw = self._frame_bytes(folder, name)
            with self._lock:   # one answer per frame: a double click does not save it twice
                if self._reviewed(folder).get(name, {}).get("action") in ("confirmed", "deleted"):
                    raise UserError(f"{shorten(name)} was already reviewed")
                to_holdout = held_back(*self._class_counts(label))
                if to_holdout:
                    path = self._holdout_writer().save(np.zeros(0), label, pts, subject,
                                                       encoded=_upright(raw, row.get("rotate")))
                    append_line(self.holdout_root / HOLDOUT_INDEX, json_text({
                        "image": path.relative_to(self.holdout_root).as_posix(), "label": label,
                        "points": None if pts is None else {k: list(v) for k, v in pts.items()},
                        "subject": subject}))
                else:
                    # a dataset that declares rotate: turns its images when read: store the
                    # frame the way its others are stored (as capture does)
                    turn = (int(row.get("rotate") or 0) - _declared(self.dataset.root)) % 360
                    self.dataset.save(np.zeros(0), label, pts, subject, encoded=_upright(raw, turn))
                self._mark(folder, name, "confirmed", label=label, points=points,
                           to="holdout" if to_holdout else "dataset",
                           corrected=_corrected(row.get("prediction"), label))
        except OSError as exc:   # pruned meanwhile, a full disk: one line, nothing half-done
            raise UserError(f"{shorten(name)}: {exc.strerror or exc}")
        return "held back" if to_holdout else "dataset"

    def _class_counts(self, label: Optional[str]) -> Tuple[int, int]:
        """Frames of class ``label`` (points tasks: all) confirmed so far, and held back."""
        confirmed = held = 0
        for folder in self.folders().values():
            for row in self._reviewed(folder).values():
                if row.get("action") == "confirmed" and row.get("label") == label:
                    confirmed += 1
                    held += row.get("to") == "holdout"
        return confirmed, held

    def _check_answer(self, label: Optional[str], points: Optional[Dict[str, Any]]
                      ) -> Tuple[Optional[str], Optional[Dict[str, Tuple[float, float]]]]:
        if self.task.task_kind.dataset_layout != "csv":
            if not isinstance(label, str) or label not in self.task.classes:
                raise UserError("'{}' is not a class of task '{}' ({})".format(
                    shorten(str(label)), self.task.name, ", ".join(self.task.classes)))
            return label, None
        if not isinstance(points, dict) or not points:
            raise UserError("send the points: {\"points\": {\"name\": [x, y]}}")
        out: Dict[str, Tuple[float, float]] = {}
        for key, value in points.items():
            if key not in self.task.points:
                raise UserError("'{}' is not a point of task '{}' ({})".format(
                    shorten(str(key)), self.task.name, ", ".join(self.task.points)))
            if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0
                    for v in value)):
                raise UserError(f"point '{key}' must be [x, y] within 0..1")
            out[key] = (float(value[0]), float(value[1]))
        return None, out

    def skip(self, model: str, name: str) -> None:
        """Leave a frame out of the dataset (it stays listed, last, and can be deleted)."""
        folder, _ = self._row(model, name)
        with self._lock:
            self._mark(folder, name, "skipped")

    def delete(self, model: str, name: str) -> Path:
        """Move a frame to ``.deleted/`` in its folder (where it can be taken back)."""
        folder, _ = self._row(model, name)
        with self._lock:
            target = folder / TRASH / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                (folder / name).replace(target)
                self._mark(folder, name, "deleted")
            except OSError as exc:
                raise UserError(f"{shorten(name)}: cannot move to {TRASH} ({exc.strerror or exc})")
        return target

    def _mark(self, folder: Path, name: str, action: str, **extra: Any) -> None:
        append_line(folder / REVIEWED, json_text(dict(
            {k: v for k, v in extra.items() if v is not None}, file=name, action=action,
            time=round(time.time(), 3))))

    def _holdout_writer(self) -> DatasetWriter:
        if self._holdout is None:
            self._holdout = DatasetWriter(self.holdout_root, self.task)
        return self._holdout

    def holdout_rows(self) -> List[Dict[str, Any]]:
        """The held-back frames: image (relative), label or points, subject."""
        return [r for r in read_lines(self.holdout_root / HOLDOUT_INDEX)
                if (self.holdout_root / str(r.get("image", ""))).is_file()]

    # -- retrain, compare, switch -----------------------------------------------------------
    def link(self) -> Optional[Path]:
        """The current-model link: given, or the one the collecting loop watched."""
        if self._link is not None:
            return self._link
        for folder in self.folders().values():
            link = _meta(folder).get("link")
            if link:
                return Path(link)
        return None

    def current_bundle(self) -> Optional[Path]:
        """The model now in use: the link's target, else the bundle that collected the frames."""
        link = self.link()
        if link is not None and link.is_symlink() and (link / "bundle.json").is_file():
            return link.resolve()
        for folder in self.folders().values():
            bundle = _meta(folder).get("bundle")
            if bundle and (Path(bundle) / "bundle.json").is_file():
                return Path(bundle)
        return None

    def need_torch(self) -> None:
        """Refuse, saying what to do instead, where this machine cannot train."""
        if not torch_available():
            raise UserError("training needs torch, which is not installed here (a desktop, or a "
                            f"Jetson installed with --train, has it): copy the dataset folder {self.dataset.root} "
                            "there and run edge-app train")

    def retrain(self, mode: Optional[str], flush: Any = None) -> Path:
        """Train a new model on the dataset (with the confirmed frames) in the studio's job."""
        self.need_torch()
        if flush is not None:
            flush()
        out = self.job.start(mode)
        with self._lock:
            self.last_trained, self._compared = out, None
            self.compare = {"state": "training", "bundle": str(out)}
        return out

    def tick(self) -> None:
        """Start the comparison once the retrain is done (called by the page's poll)."""
        with self._lock:
            out = self.last_trained
            if out is None or self._compared == str(out) or self.job.out != out:
                return
            status = self.job.status()
            if status["state"] == "failed":
                self._compared = str(out)
                self.compare = {"state": "failed", "bundle": str(out), "error": status.get("error")}
                return
            if status["state"] != "done":
                return
            self._compared = str(out)
            self.compare = {"state": "comparing", "bundle": str(out)}
            self._thread = threading.Thread(target=self._compare, args=(out,), name="review-compare",
                                            daemon=True)
            self._thread.start()

    def _compare(self, new: Path) -> None:
        try:
            result = self.compare_and_switch(new)
        except Exception as exc:   # shown on the page; the current model stays
            result = {"state": "failed", "bundle": str(new), "error": shorten(str(exc) or type(exc).__name__, 300)}
        with self._lock:
            self.compare = result

    def compare_and_switch(self, new: Path, force: bool = False) -> Dict[str, Any]:
        """Score ``new`` and the current model on the held-back frames; make ``new`` current
        when it is better (or ``force``). Returns what the page shows."""
        rows = self.holdout_rows()
        current = self.current_bundle()
        out: Dict[str, Any] = {"state": "done", "bundle": str(new), "current": str(current) if current else None,
                               "n": len(rows)}
        if current is not None and current.resolve() == Path(new).resolve():
            out.update(switched=False, why="it is the current model already")
            return out
        if rows and len(rows) >= MIN_HOLDOUT:
            out["new_score"] = score_bundle(new, rows, self.holdout_root, self.task)
            if current is not None:
                out["current_score"] = score_bundle(current, rows, self.holdout_root, self.task)
        better = _better(out.get("new_score"), out.get("current_score"))
        if force or better:
            link = self.link()
            if link is None:
                out.update(switched=False, why="no current link to switch (run the loop with "
                           "--model RUNS/current, or start the studio with --current LINK)")
                return out

            previous = switch_link(link, Path(new))
            out.update(switched=True, link=str(link), previous=str(previous) if previous else None,
                       why="forced" if force and not better else "better on the held-back frames")
        else:
            out.update(switched=False, why=_why_not(out, len(rows)))
        return out

    def switch(self) -> Dict[str, Any]:
        """Make the last trained model current without a better score (the user's call)."""
        if self.last_trained is None or not (self.last_trained / "bundle.json").is_file():
            raise UserError("no finished retrain to switch to: press Retrain first")
        result = self.compare_and_switch(self.last_trained, force=True)
        with self._lock:
            self.compare = result
        return result

    def rollback(self) -> str:
        """Point the current link back at the previous bundle."""
        link = self.link()
        if link is None:
            raise UserError("no current link to roll back")
        back = rollback(link)
        with self._lock:
            self.compare = dict(self.compare, rolled_back=str(back))
        return str(back)

    def state(self) -> Dict[str, Any]:
        """What the Review view shows."""
        self.tick()
        items = self.items()
        counts: Dict[str, int] = {"to_review": sum(1 for i in items if not i["skipped"]),
                                  "skipped": sum(1 for i in items if i["skipped"])}
        confirmed = held = 0
        for folder in self.folders().values():
            for row in self._reviewed(folder).values():
                if row.get("action") == "confirmed":
                    confirmed += 1
                    held += row.get("to") == "holdout"
        counts.update(confirmed=confirmed, held_back=held)
        link = self.link()
        with self._lock:
            compare = dict(self.compare)
        return {"root": str(self.root), "models": list(self.folders()), "items": items,
                "counts": counts, "can_train": torch_available(), "compare": compare,
                "link": str(link) if link else None,
                "current": str(self.current_bundle() or "") or None}

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(60)


def _declared(root: Path) -> int:
    """The ``rotate:`` a dataset declares (0 for none, or no dataset.yaml yet)."""
    return declared_rotation(root / META_NAME) if (root / META_NAME).is_file() else 0


def _upright(data: bytes, turn: Any) -> bytes:
    """ROTATION HOOK: a collected JPEG is the frame as the camera gave it; a loop whose source
    turned the picture (``?rotate=``) noted the turn, which is applied here, so the dataset
    holds the frame the model saw (the stored subject is in its coordinates)."""
    if not turn:
        return data

    try:
        image = decode_image(data, "a collected frame")   # the one reader: pixel limit first
    except ImageError as exc:
        raise UserError(f"{exc}; delete it") from None
    ok, buf = cv2().imencode(".jpg", rotate_image(image, int(turn)), [cv2().IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise UserError("could not encode the turned frame as JPEG")
    return bytes(buf.tobytes())


def _meta(folder: Path) -> Dict[str, Any]:
    try:
        meta = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _corrected(prediction: Any, label: Optional[str]) -> Optional[bool]:
    if label is None or not isinstance(prediction, dict):
        return None
    return prediction.get("label") != label


def _better(new: Optional[Dict[str, Any]], current: Optional[Dict[str, Any]]) -> bool:
    if new is None:
        return False
    if current is None:
        return True
    if new["metric"] == "accuracy":
        return new["value"] > current["value"]
    return new["value"] < current["value"]


def _why_not(out: Dict[str, Any], n: int) -> str:
    if n < MIN_HOLDOUT:
        return (f"only {n} held-back frame(s) (one confirmed frame in {HOLDOUT_EVERY} is held back; {MIN_HOLDOUT} are "
                "needed): confirm more, or switch anyway")
    return f"not better than the current model on the {n} held-back frames; the current one stays"


def score_bundle(bundle: Path, rows: List[Dict[str, Any]], root: Path, task: TaskSpec) -> Dict[str, Any]:
    """A bundle's score on labelled frames with their stored subjects, run as the live loop
    runs it (the on-device backends; no training code): accuracy for classes (a frame whose
    subject cannot be used counts as wrong), mean point error (fraction of the frame) for points."""
    info = load_model_info(str(bundle))
    backend, _ = choose_backend("auto", info)
    points = task.task_kind.dataset_layout == "csv"
    right, errors = 0, []
    try:
        for row in rows:
            image, _ = read_image(root / row["image"])   # upright where a dataset declares rotate:
            if image is None:
                continue
            size = (image.shape[1], image.shape[0])
            subject = Subject.from_dict(row["subject"], size) if row.get("subject") else None
            result = None
            if not (info.subject and subject is None):
                batch, where = info.input_kind.live_input(image, subject, info.input_size, info.pad,
                                                           info.plan.feature_schema)
                if batch is not None:
                    out = backend.infer(batch)
                    result = DECODERS[info.output](out[0], info.labels)
                    if where is not None and subject is not None:
                        result = place(result, subject, where, size)
            if not points:
                right += int(isinstance(result, ClassResult) and result.label == row.get("label"))
                continue
            want = row.get("points") or {}
            if isinstance(result, PointsResult):
                got = dict(zip(result.names, np.asarray(result.points, np.float64)))
                errors += [float(np.hypot(*(got[k] - np.asarray(v, np.float64))))
                           for k, v in want.items() if k in got]
            else:
                errors += [1.0] * len(want)
    finally:
        backend.close()
    if points:
        return {"metric": "error", "value": round(float(np.mean(errors)) if errors else 1.0, 4),
                "n": len(rows)}
    return {"metric": "accuracy", "value": round(right / max(1, len(rows)), 4), "n": len(rows)}
