"""A labelled dataset read for training or evaluation: verified, lined up with the task, and
points outside the image masked; problems are reported, not fatal."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge_app.dataset.formats import ReadOptions, read_dataset
from edge_app.dataset.match import match_task
from edge_app.dataset.samples import Dataset
from edge_app.errors import DatasetError
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)
NAMED = 10   # problems named one by one; the rest are counted


def load_labelled(data: Path, task: TaskSpec, fmt: str, purpose: str, progress: bool) -> Dataset:
    """Read, verify and line up a dataset with the task."""
    ds = read_dataset(Path(data), fmt, ReadOptions()).verify(progress=progress)
    for problem in ds.problems[:NAMED]:   # one line each: which file, and why
        log.warning("skipped %s", problem)
    if len(ds.problems) > NAMED:
        log.warning("skipped %d more unreadable file(s) or row(s) in %s (edge-app data info lists them)",
                    len(ds.problems) - NAMED, data)
    ds = match_task(ds, task, purpose)
    for note in ds.notes:
        log.info("note: %s", note)
    if task.task_kind.labels_key == "points":
        mask_outside(ds)
        if ds.samples and not any(s.points is not None and not np.isnan(s.points).all() for s in ds.samples):
            raise DatasetError(f"{data}: no image has a labelled point inside it, so there is nothing to "
                               f"{'learn' if purpose == 'train' else 'score'}; check the points' units "
                               "(coords: pixels or normalized, in dataset.yaml or --coords of data import)")
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
