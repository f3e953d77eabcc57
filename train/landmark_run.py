"""Training a landmark model: split, fit, metrics; and its features in the bundle."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from edge_app.errors import DatasetError
from edge_app.inputs import LANDMARK_LAYOUT
from train.candidate import Candidate, TrainJob, split
from train.hand_heads import head_for
from train.landmarks import MLP_ARCH, fit, predict

log = logging.getLogger(__name__)


def train_landmarks(job: TrainJob, trainer: Any) -> Candidate:
    """Fit the landmark model on the samples whose subject has landmarks (``trainer``'s view:
    landmark features, or those and the texture block)."""
    task = job.task
    kind = task.task_kind.training()
    view = trainer.view(job.ds, job.plan, job.scan, task, job.progress)
    if len(view.samples) < 4:
        raise DatasetError("{}: only {} image(s) with {} landmarks; capture more, or train with "
                           "--input crop or frame".format(job.ds.root, len(view.samples), task.subject))
    tr, va = split(view, job, trainer)
    start = time.monotonic()
    schema = view.schema or str(task.subject)
    # a declared hand head reads landmark measures only: with --input texture, the MLP
    head = head_for(task, schema) if job.plan.input == "landmarks" else None
    if head is not None:
        log.log(logging.DEBUG if job.quiet else logging.INFO, "landmarks: %s", head.says)
    arch = head.arch if head is not None else MLP_ARCH
    model, (history, best, best_epoch) = fit(tr, va, task, job.cfg, job.device, schema, arch)
    seconds = time.monotonic() - start
    metrics = kind.metrics(predict(model, va.features), va.targets, task, va.sizes) \
        if va.features is not None and len(va.samples) else {}
    log.log(logging.DEBUG if job.quiet else logging.INFO, "trained a %s model in %.1f s; validation: %s",
            job.plan.input, seconds, kind.describe(metrics) if metrics else "n/a")
    width = int(view.features.shape[1]) if view.features is not None else 0
    plan = dataclasses.replace(job.plan, features=width, layout=LANDMARK_LAYOUT,
                               schema=schema)
    timings = {"train_seconds": round(seconds, 2), "feature_seconds": 0.0,
               "images_per_second": None, "feature_cache_hit": False}
    return Candidate(plan, model, arch, "none", (1, width), metrics, history, best_epoch,
                     len(tr.samples), va, len(view.samples) / max(1, len(job.ds.samples)), timings)
