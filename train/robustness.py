"""The robustness report at training time: how the candidate model does on its validation images
as other cameras would show them (train/shifts.py), and on people it has not seen (leave one
group out, when ``--group`` says who is who). Kept in the bundle and printed with the summary.

Works for every input kind through its training side (``view``, ``predict``, ``train``): the
shifted images are written once into a cache by content, and their subjects found by the same
subject stage training uses (the hard search for labelled stills), cached by the same key, so
a warm rerun renders and searches nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.atomic import atomic_write_bytes, json_text
from edge_app.dataset.samples import Dataset, Sample
from edge_app.dataset.subjects import CACHE_VERSION, SubjectScan, load_cache, save_cache
from edge_app.dataset.verify import declared_rotation, read_image
from edge_app.errors import UserError
from edge_app.opencv import cv2
from edge_app.subject.base import Subject
from edge_app.subject.providers import find_subject, make_finder
from edge_app.train.candidate import Candidate, TrainJob, View
from edge_app.train.shifts import SHIFTS_VERSION, get_shift
from edge_app.train.split import _units

log = logging.getLogger(__name__)

# Rotations are left out by default: a declared rotation is undone exactly by the reader, so
# they would score what the unshifted images score.
REPORT_SHIFTS = ("purple", "green", "dark", "bright", "backlight", "lowres", "blur", "far", "noise")
MAX_IMAGES = 100     # validation images rendered through each shift
MIN_IMAGES = 20      # fewer validation images than this: scores too coarse to report
MAX_FOLDS = 5        # leave-one-group-out: at most this many held-out folds of groups


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGE_APP_CACHE", "~/.cache/edge-app")).expanduser() / "robustness"


def robustness_report(cand: Candidate, job: TrainJob, shifts: Sequence[str] = REPORT_SHIFTS,
                      max_images: int = MAX_IMAGES, cache_dir: Optional[Path] = None,
                      groups: bool = True) -> Dict[str, Any]:
    """The candidate's validation images (at most ``max_images``, stratified) under each camera
    shift: accuracy (or point error) with misses counted, and the detection rate; plus a
    leave-one-group-out score when ``job.cfg.group`` is set (and ``groups``). JSON-able:
    ``{"images": n, "seconds": s, "shifts": {"none": metrics, "<shift>": metrics, ...},
    "leave_one_group_out": {...} or absent}``."""
    start = time.monotonic()
    kind = job.task.task_kind.training()
    samples, subjects = _validation(cand, job, max_images)
    out: Dict[str, Any] = {"images": len(samples), "shifts": {}}
    if samples:
        renders = _Renders(cache_dir or default_cache_dir(), job, cand.plan.kind.subject)
        try:
            out["shifts"]["none"] = _score(cand, job, _dataset(job.ds, samples),
                                           SubjectScan(list(subjects)))
            for name in shifts:
                ds, scan = renders.shifted(samples, subjects, name)
                out["shifts"][name] = _score(cand, job, ds, scan)
        finally:
            renders.close()
    if groups and job.cfg.group:
        out["leave_one_group_out"] = leave_one_group_out(cand, job)
    out["seconds"] = round(time.monotonic() - start, 2)
    log.debug("robustness report in %.1f s: %s", out["seconds"], describe(out, kind))
    return out


def training_report(cand: Candidate, job: TrainJob) -> Dict[str, Any]:
    """The report for the model training keeps, logged as part of the training summary. With
    fewer than ``MIN_IMAGES`` validation images only leave-one-group-out is made (when
    ``--group`` is set). A report that cannot be made (no detector for the shifted pictures,
    say) is one warning and an empty report, never a failed training."""
    kind = job.task.task_kind.training()
    few = len(cand.val.samples) < MIN_IMAGES
    if few and not job.cfg.group:
        log.info("robustness report skipped: %d validation image(s), too few for shift scores "
                 "worth reading (at least %d)", len(cand.val.samples), MIN_IMAGES)
        return {}
    try:
        report = robustness_report(cand, job, () if few else REPORT_SHIFTS)
    except (UserError, OSError) as exc:
        log.warning("robustness report skipped: %s", exc)
        return {}
    except Exception as exc:   # noqa: BLE001 - a finished model must never be lost to its report
        log.warning("robustness report skipped: %s: %s", type(exc).__name__, exc)
        log.debug("robustness report", exc_info=True)
        return {}
    if few:
        report = {k: v for k, v in report.items() if k not in ("shifts", "images")}
    if report.get("images") or report.get("leave_one_group_out"):
        log.info("robustness, misses counted (%.0f s): %s", report.get("seconds", 0.0),
                 describe(report, kind))
    return report


def describe(report: Dict[str, Any], kind: Any) -> str:
    """One line: each shift's headline (misses counted) and the detection rate, then the
    leave-one-group-out score."""
    parts = []
    for name, m in report.get("shifts", {}).items():
        text = "{} {}".format(name, kind.short(m) if m else "n/a")
        if m and m.get("detection_rate") is not None:
            text += " (found {:.0%})".format(m["detection_rate"])
        parts.append(text)
    if parts:
        parts[0] = "{} validation image(s): {}".format(report.get("images", 0), parts[0])
    logo = report.get("leave_one_group_out")
    if logo and logo.get("metrics"):
        parts.append("leave one group out {} over {} fold(s)".format(
            kind.short(logo["metrics"]), len(logo.get("folds", []))))
    return ", ".join(parts) or "n/a"


# -- the validation images ----------------------------------------------------------------
def _validation(cand: Candidate, job: TrainJob, limit: int) -> Tuple[List[Sample], List[Optional[Subject]]]:
    """The original samples behind the candidate's validation view (crop views hold crops of
    them), at most ``limit``, a fixed share of each class; and their subjects."""
    index = {str(s.path): i for i, s in enumerate(job.ds.samples)}
    rows = [index[str(s.path)] for s in cand.val.samples if str(s.path) in index]
    rows = sorted(set(rows))
    if len(rows) > limit:
        rng = np.random.default_rng(job.cfg.seed)
        labels = [job.ds.samples[i].label or "" for i in rows]
        chosen: List[int] = []
        for label in sorted(set(labels)):
            members = [r for r, l in zip(rows, labels) if l == label]
            share = max(1, int(round(limit * len(members) / len(rows))))
            chosen += [members[k] for k in rng.permutation(len(members))[:share]]
        rows = sorted(chosen)[:limit]
    subjects = job.scan.subjects if job.scan is not None else [None] * len(job.ds.samples)
    return [job.ds.samples[i] for i in rows], [subjects[i] for i in rows]


def _dataset(ds: Dataset, samples: List[Sample], root: Optional[Path] = None) -> Dataset:
    return dataclasses.replace(ds, root=root or ds.root, samples=list(samples), problems=[],
                               notes=[], verified=True)


def _score(cand: Candidate, job: TrainJob, ds: Dataset, scan: SubjectScan) -> Dict[str, Any]:
    """Metrics of the candidate on ``ds`` seen through its input kind; a missed subject is a
    wrong answer."""
    task, plan = job.task, cand.plan
    kind = task.task_kind.training()
    trainer = plan.kind.training()
    view: View = trainer.view(ds, plan, scan if plan.kind.subject else None, task, False)
    outputs = trainer.predict(cand.model, view, cand.input_size, job.device) if view.samples \
        else kind.empty_outputs(task)
    metrics = kind.metrics(outputs, view.targets, task, view.sizes)
    if plan.kind.subject:
        metrics = kind.count_misses(metrics, [s.label for s in view.missed], task)
    return _jsonable(metrics)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# -- shifted copies and their subjects, cached by content ----------------------------------
class _Renders:
    """Shifted validation images written once under ``cache_dir/images`` (named by the hash of
    the source bytes, the shift and its version), and their subjects in one JSON file per
    subject kind, provider and search version."""

    def __init__(self, cache_dir: Path, job: TrainJob, subjects: bool = True) -> None:
        self.dir = Path(cache_dir).expanduser()
        self.images = self.dir / "images"
        plan = job.plan
        self.kind = plan.subject or job.task.subject
        self.provider, self.crops = plan.provider, bool(plan.crops)
        # a model of the whole frame reads no subject: nothing to search for
        self.needs_subject = subjects and bool(plan.subject) and job.task.subject != "none"
        key = json_text([self.kind, self.provider, self.crops, CACHE_VERSION, SHIFTS_VERSION])
        self.path = self.dir / f"subjects-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
        self.cache = load_cache(self.path)
        self.version = SHIFTS_VERSION
        self.finder: Any = None
        self.dirty = False
        self._source_hash: Dict[str, str] = {}
        self._ds = job.ds
        self._pixels = job.ds.coords != "normalized"   # points in pixels, not 0..1

    def _hash(self, sample: Sample) -> str:
        key = str(sample.path)
        if key not in self._source_hash:
            self._source_hash[key] = hashlib.sha1(sample.path.read_bytes()).hexdigest()
        return self._source_hash[key]

    def shifted(self, samples: List[Sample], subjects: List[Optional[Subject]], name: str
                ) -> Tuple[Dataset, SubjectScan]:
        """The samples as shift ``name`` shows them (points moved with the picture), and
        their subjects."""
        shift = get_shift(name)
        out_samples: List[Sample] = []
        found: List[Optional[Subject]] = []
        scan = SubjectScan([])
        for s, subject in zip(samples, subjects):
            w, h = s.size or (1, 1)
            box = None if subject is None else tuple(round(float(v), 2) for v in subject.box)
            # the declared turn changes the picture read from the same bytes (rotate: added later)
            turn = declared_rotation(s.path)
            key = hashlib.sha1(json_text([self._hash(s), name, self.version, box, turn]
                                          ).encode()).hexdigest()[:24]
            path = self.images / (key + ".png")
            entry = self.cache.get(key)
            # an entry without "subject" was rendered for a whole-frame model: never searched
            if not path.is_file() or entry is None or (self.needs_subject and "subject" not in entry):
                image = self._render(s, shift, box, path)
                if image is None:
                    continue
                entry = {"size": [int(image.shape[1]), int(image.shape[0])]}
                if self.needs_subject:
                    entry["subject"] = self._find(image)
                    scan.detected += 1
                self.cache[key] = entry
                self.dirty = True
            else:
                scan.cached += 1
            size = (int(entry["size"][0]), int(entry["size"][1]))
            d = entry.get("subject")
            found.append(None if d is None else Subject.from_dict(d, size))
            points = s.points
            if points is not None:   # geometric shifts (far) move the labelled points
                scale = np.array([w, h], np.float64) if self._pixels else np.ones(2)
                norm = shift.map_points(np.asarray(points, np.float64) / scale, size)
                back = np.array(size, np.float64) if self._pixels else np.ones(2)
                points = (norm * back).astype(np.asarray(s.points).dtype)
            out_samples.append(dataclasses.replace(s, path=path, size=size, crop=None, points=points))
        scan.subjects = found
        return _dataset(self._ds, out_samples, self.images), scan

    def _render(self, sample: Sample, shift: Any, box: Any, path: Path) -> Optional[np.ndarray]:
        image, _ = read_image(sample.path)
        if image is None:
            return None
        out = shift.apply(image, box)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2().imencode(".png", out)
        if ok:
            atomic_write_bytes(path, data.tobytes())
        return out

    def _find(self, image: np.ndarray) -> Optional[Dict[str, Any]]:
        if self.finder is None:
            self.finder = make_finder(self.kind, self.provider, tracking=False)
        found = find_subject(self.finder, image, None, self.crops, hard=True)
        h, w = image.shape[:2]
        return None if found is None else found.to_dict((w, h))

    def close(self) -> None:
        if self.finder is not None:
            self.finder.close()
        if self.dirty:
            save_cache(self.path, self.cache)


# -- leave one group out -------------------------------------------------------------------
def leave_one_group_out(cand: Candidate, job: TrainJob, max_folds: int = MAX_FOLDS) -> Dict[str, Any]:
    """Train the candidate's input kind without each group (the ``--group`` pattern's match in
    the file name: a person, a session) and score it on that group. More groups than
    ``max_folds`` are dealt into that many folds, largest first, so it stays a few trainings."""
    task = job.task
    kind = task.task_kind.training()
    units = _units(job.ds.samples, job.cfg.group)
    units = [u for u in units if u]
    if len(units) < 2:
        return {"folds": [], "note": "fewer than two groups"}
    folds: List[List[int]] = [[] for _ in range(min(max_folds, len(units)))]
    for u in sorted(units, key=len, reverse=True):   # largest groups first, to the emptiest fold
        min(folds, key=len).extend(u)
    subjects = job.scan.subjects if job.scan is not None else None
    fold_rows: List[Dict[str, Any]] = []
    right, total = 0.0, 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edge-app-fold-") as scratch:
        # each fold checkpoints into its own scratch folder, never over the kept model's
        for n, held in enumerate(folds):
            _fold(job, cand, held, subjects, Path(scratch) / str(n), fold_rows)
    for row in fold_rows:
        if "accuracy" in row["metrics"]:
            right += row["metrics"]["accuracy"] * row["images"]
            total += row["images"]
    out: Dict[str, Any] = {"folds": fold_rows, "groups": len(units)}
    if total:
        out["metrics"] = {"accuracy": right / total, "n": total}
    else:   # points: the mean of the folds' errors
        keys = [k for k in ("rmse_px", "rmse", "nme") if all(k in f["metrics"] and f["metrics"][k] is not None
                                                         for f in fold_rows)]
        out["metrics"] = {k: float(np.mean([f["metrics"][k] for f in fold_rows])) for k in keys}
    log.debug("leave one group out: %s", kind.describe(out["metrics"]) if "accuracy" in out["metrics"] else out)
    return out


def _fold(job: TrainJob, cand: Candidate, held: List[int], subjects: Optional[List[Optional[Subject]]],
          scratch: Path, rows: List[Dict[str, Any]]) -> None:
    """Train the kept input kind without the ``held`` images (checkpoints in ``scratch``, no
    resume) and score it on them; appends ``{"images", "metrics"}`` to ``rows``."""
    held_set = set(held)
    keep = [i for i in range(len(job.ds.samples)) if i not in held_set]
    sub = _subset(job, keep, subjects)
    plan = dataclasses.replace(job.plan, input=cand.plan.input)
    trained = plan.kind.training().train(dataclasses.replace(
        job, ds=sub.ds, scan=sub.scan, plan=plan, progress=False, quiet=True, val_dir=None,
        out=scratch, resume=False))
    test = _subset(job, sorted(held), subjects)
    metrics = _score(trained, dataclasses.replace(job, plan=trained.plan), test.ds,
                     test.scan or SubjectScan([None] * len(test.ds.samples)))
    rows.append({"images": len(held), "metrics": metrics})


@dataclasses.dataclass
class _Part:
    ds: Dataset
    scan: Optional[SubjectScan]


def _subset(job: TrainJob, rows: List[int], subjects: Optional[List[Optional[Subject]]]) -> _Part:
    ds = _dataset(job.ds, [job.ds.samples[i] for i in rows])
    scan = None if subjects is None else SubjectScan([subjects[i] for i in rows])
    return _Part(ds, scan)
