"""Line a dataset up with a task: same label order, unknown labels named, missing ones caught.

Training needs every label of the task and rejects unknown class folders; evaluation accepts
a subset and names what it skipped.
"""
from __future__ import annotations

from typing import List

import numpy as np

from edge_app.dataset.samples import Dataset
from edge_app.errors import DatasetError, did_you_mean
from edge_app.tasks.spec import TaskSpec

PURPOSES = ("train", "eval", "import")


def match_task(ds: Dataset, task: TaskSpec, purpose: str = "train") -> Dataset:
    """A copy of ``ds`` whose labels are the task's, in the task's order."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    if ds.kind != task.kind:
        raise DatasetError("{}: holds a {} dataset ({}), but task '{}' is {}".format(
            ds.root, ds.kind, ", ".join(ds.labels[:6]), task.name, task.kind))
    if task.task_kind.dataset_layout == "csv":
        return _match_points(ds, task, purpose)
    return _match_classes(ds, task, purpose)


def _match_classes(ds: Dataset, task: TaskSpec, purpose: str) -> Dataset:
    counts = ds.counts()
    unknown = [c for c in ds.labels if c not in task.classes]
    notes: List[str] = list(ds.notes)
    if unknown and purpose == "train":
        hint = did_you_mean(unknown[0], task.classes)
        raise DatasetError("{}: class folder(s) {} are not classes of task '{}' ({}){}: rename or "
                           "remove them, or add them to the task's classes".format(
                               ds.root, ", ".join(f"'{c}'" for c in unknown), task.name,
                               ", ".join(task.classes), hint))
    if unknown:
        notes.append("skipped class folder(s) not in task '{}': {} ({} images)".format(
            task.name, ", ".join(unknown), sum(counts.get(c, 0) for c in unknown)))
    missing = [c for c in task.classes if counts.get(c, 0) == 0]
    if missing and purpose == "train":
        raise DatasetError("{}: class(es) {} of task '{}' have no images; capture some (edge-app "
                           "capture --task {} --label {}) or fix the folder names".format(
                               ds.root, ", ".join(f"'{c}'" for c in missing), task.name,
                               task.name, missing[0]))
    if missing:
        notes.append("no images for class(es): {}".format(", ".join(missing)))
    samples = [s for s in ds.samples if s.label in task.classes]
    return _copy(ds, task, samples, notes)


def _match_points(ds: Dataset, task: TaskSpec, purpose: str) -> Dataset:
    missing = [p for p in task.points if p not in ds.labels]
    extra = [p for p in ds.labels if p not in task.points]
    notes: List[str] = list(ds.notes)
    if missing and purpose == "train":
        raise DatasetError("{}: point(s) {} of task '{}' are not in the labels (they hold: {}){}"
                           .format(ds.root, ", ".join(missing), task.name, ", ".join(ds.labels),
                                   did_you_mean(missing[0], ds.labels)))
    if missing:
        notes.append("point(s) not labelled in this dataset: {}".format(", ".join(missing)))
    if extra:
        notes.append("ignored point column(s) not in task '{}': {}".format(task.name, ", ".join(extra)))
    index = [ds.labels.index(p) if p in ds.labels else -1 for p in task.points]
    samples = []
    for s in ds.samples:
        pts = np.full((len(task.points), 2), np.nan)
        assert s.points is not None
        for j, i in enumerate(index):
            if i >= 0:
                pts[j] = s.points[i]
        if not np.isnan(pts).all():
            samples.append(type(s)(s.path, points=pts, split=s.split, size=s.size))
    return _copy(ds, task, samples, notes)


def _copy(ds: Dataset, task: TaskSpec, samples: list, notes: List[str]) -> Dataset:
    return Dataset(ds.root, ds.format, ds.kind, task.labels, samples, coords=ds.coords,
                   problems=list(ds.problems), notes=notes, task=task.name, verified=ds.verified)
