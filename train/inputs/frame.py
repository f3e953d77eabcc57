"""The CNN candidate (whole frames or crops): fit in fast or full mode, then its metrics."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import SubjectScan
from edge_app.errors import DatasetError
from edge_app.model.bundle import Bundle
from edge_app.model.inputs import InputPlan
from edge_app.tasks.spec import TaskSpec
from edge_app.tasks.train_config import TrainConfig
from edge_app.train.candidate import Candidate, TrainJob, View, input_size, split
from edge_app.train.fitting import fit_fast, fit_full, predict
from edge_app.train.inputs.base import TrainingInput
from edge_app.train.network import build_model
from edge_app.train.torch_data import sizes_of

log = logging.getLogger(__name__)


def train_cnn(job: TrainJob, trainer: Any) -> Candidate:
    """Train the CNN on ``trainer``'s view of the data (frames or crops)."""
    task, cfg, size = job.task, job.cfg, input_size(job.cfg, job.task)
    kind = task.task_kind.training()
    view = trainer.view(job.ds, job.plan, job.scan, task, job.progress)
    if view.missed:
        log.info("left out %d image(s) with no %s found (see: edge-app data info --task %s --data %s)",
                 len(view.missed), job.plan.subject, task.name, job.ds.root)
    tr, va = split(view, job, trainer)
    if len(tr.samples) < 2:
        raise DatasetError(f"{job.data}: only {len(tr.samples)} training image(s); capture more")
    if not len(va.samples):
        log.warning("no validation images (dataset too small); the last epoch is kept")
    _report(job, f"data: {len(tr.samples) + len(va.samples)} images ({len(tr.samples)} train, {len(va.samples)} validation) from {job.data}")
    _report(job, f"model: {cfg.arch} with {cfg.weights} weights, input {size[1]}x{size[0]}, mode {cfg.mode}, on {job.device}")
    model = build_model(task, cfg.arch, cfg.weights)
    result = fit_cnn(model, task, tr, va, cfg, size, job.device, job.out, job.resume, job.progress,
                     job.cache_dir)
    outputs = predict(model, va.samples, size, job.device, cfg.batch_size, cfg.workers) \
        if len(va.samples) else None
    metrics = kind.metrics(outputs, va.targets, task, va.sizes) if outputs is not None else {}
    model.cpu()
    _report(job, "trained in {:.1f} s{}; validation: {}".format(
        result.seconds, " (features cached)" if result.cache_hit else "",
        kind.describe(metrics) if metrics else "n/a"))
    timings = {"train_seconds": round(result.seconds, 2),
               "feature_seconds": round(result.feature_seconds, 2),
               # full: training images per second; fast: views through the backbone
               "images_per_second": _rate(result, cfg.mode),
               "feature_cache_hit": result.cache_hit}
    return Candidate(plan=job.plan, model=model, arch=cfg.arch, weights=cfg.weights,
                     input_size=size, metrics=metrics, history=list(result.history),
                     best_epoch=result.best_epoch, train_count=len(tr.samples), val=va,
                     found_rate=job.plan.detection_rate or 1.0, timings=timings,
                     grid_outputs=outputs)


def _report(job: TrainJob, text: str) -> None:
    log.log(logging.DEBUG if job.quiet else logging.INFO, text)


def fit_cnn(model: Any, task: TaskSpec, train: View, val: View, cfg: TrainConfig,
            size: Tuple[int, int], device: Any, out: Path, resume: bool, progress: bool,
            cache_dir: Optional[Path]) -> Any:
    """Fast: the head on cached features of a frozen backbone. Full: a linear-probe warm
    start, then fine-tuning; the warm start (or an earlier epoch) is kept only when it beats
    the later epochs by more than the validation noise (``edge_app.train.fitting.choose``)."""
    kind = task.task_kind.training()
    tr, va = (train.samples, train.targets), (val.samples, val.targets)
    if cfg.mode == "fast":
        cache = None if cache_dir is None else Path(cache_dir).expanduser()
        return fit_fast(model, kind, task, tr, va, val.sizes, cfg, size, device, cache, progress)
    baseline = None
    if not resume:   # linear probe first: fine-tuning starts from a head that fits
        probe = fit_fast(model, kind, task, tr, va, val.sizes,
                         dataclasses.replace(cfg, views=0, epochs=30), size, device, None, progress)
        log.info("head warm start (frozen backbone): %s", kind.describe(probe.best) if probe.best else "done")
        baseline = probe.best or None
        for p in model.features.parameters():
            p.requires_grad_(True)
    result = fit_full(model, kind, task, tr, va, val.sizes, cfg, size, device, Path(out) / "last.pt",
                      resume, progress, baseline=None if resume else baseline)
    if result.best_epoch == 0:
        log.info("kept the warm-start model: every fine-tuning epoch scored clearly below it on validation")
    return result


def _rate(result: Any, mode: str) -> Optional[float]:
    seconds = result.feature_seconds if mode == "fast" else result.seconds
    if not seconds or (mode == "fast" and result.cache_hit):
        return None
    return round(result.images_seen / seconds, 1)


class FrameTraining(TrainingInput):
    """The CNN on whole frames."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        return View(list(ds.samples), task.task_kind.training().targets(ds), sizes_of(ds.samples))

    def train(self, job: TrainJob) -> Candidate:
        return train_cnn(job, self)

    def build(self, bundle: Bundle) -> Any:
        return build_model(bundle.task, bundle.arch, "none")

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        if not view.samples:
            return np.zeros((0, 0), np.float32)
        return predict(model, view.samples, size, device, progress=progress)


FRAME = FrameTraining()
