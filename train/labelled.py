"""A labelled dataset read for training or evaluation: verified, lined up with the task, and
points outside the image masked; problems are reported, not fatal."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge_app.dataset.formats import ReadOptions, read_dataset
from edge_app.dataset.match import match_task
from edge_app.dataset.samples import Dataset
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)


def load_labelled(data: Path, task: TaskSpec, fmt: str, purpose: str, progress: bool) -> Dataset:
    """Read, verify and line up a dataset with the task."""
    ds = read_dataset(Path(data), fmt, ReadOptions()).verify(progress=progress)
    if ds.problems:
        log.info("skipped %d unreadable file(s) or row(s) in %s, e.g. %s", len(ds.problems), data,
                 ds.problems[0])
    ds = match_task(ds, task, purpose)
    for note in ds.notes:
        log.info("note: %s", note)
    if task.task_kind.labels_key == "points":
        mask_outside(ds)
    return ds


def mask_outside(ds: Dataset) -> None:
    """Points outside the image can't be right: treated as missing, with a warning."""
    bad = 0
    for s in ds.samples:
        pts = s.normalized_points(ds.coords)
        outside = ~np.isnan(pts[:, 0]) & ((pts < 0) | (pts > 1)).any(axis=1)
        if outside.any() and s.points is not None:
            bad += 1
            s.points = s.points.copy()
            s.points[outside] = np.nan
    if bad:
        log.warning("%d image(s) have a point outside the image; those points are ignored", bad)
