"""Training a landmark model: split, fit, metrics; and its features in the bundle."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Optional, Tuple

import numpy as np

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import SubjectScan
from edge_app.errors import DatasetError
from edge_app.model.bundle import Bundle
from edge_app.model.inputs import LANDMARK_LAYOUT, InputPlan
from edge_app.tasks.spec import TaskSpec
from edge_app.train.candidate import Candidate, TrainJob, View, split
from edge_app.train.hand_models import head_for
from edge_app.train.inputs.base import TrainingInput, feature_schema
from edge_app.train.landmark_mlp import MLP_ARCH, fit, landmark_data, make_model, predict

log = logging.getLogger(__name__)


def train_landmarks(job: TrainJob, trainer: Any) -> Candidate:
    """Fit the landmark model on the samples whose subject has landmarks (``trainer``'s view:
    landmark features, or those and the texture block)."""
    task = job.task
    kind = task.task_kind.training()
    view = trainer.view(job.ds, job.plan, job.scan, task, job.progress)
    if len(view.samples) < 4:
        raise DatasetError(f"{job.ds.root}: only {len(view.samples)} image(s) with {task.subject} landmarks; capture more, or train with "
                           "--input crop or frame")
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
    return Candidate(plan=plan, model=model, arch=arch, weights="none", input_size=(1, width),
                     metrics=metrics, history=history, best_epoch=best_epoch,
                     train_count=len(tr.samples), val=va,
                     found_rate=len(view.samples) / max(1, len(job.ds.samples)), timings=timings)


class LandmarksTraining(TrainingInput):
    """A small model on the subject's landmark features (the MLP, or a hand head the task
    declares: train.hand_heads)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        kind = task.task_kind.training()
        schema = feature_schema(plan, scan)
        data, missed = landmark_data(ds, scan.subjects, kind.targets(ds), kind, schema)
        return View(data.samples, data.y, data.sizes, data.x, missed, schema)

    def train(self, job: TrainJob) -> Candidate:
        return train_landmarks(job, self)

    def build(self, bundle: Bundle) -> Any:
        return make_model(bundle.task, str(bundle.plan.feature_schema), bundle.plan.features, bundle.arch)

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        assert view.features is not None
        return predict(model.cpu(), view.features)


LANDMARKS = LandmarksTraining()
