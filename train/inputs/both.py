"""``--input both``: the crop CNN's pooled features and the subject's landmark features side
by side into one head. The crop sees what landmarks cannot (a hand's skin folds, a face's
texture); the landmarks carry the shape free of the room and the light.

One graph with two inputs, ``images`` (the crop, as crop models take it) and ``landmarks``
(the features of edge_app.subject.landmarks), so export, parity, every backend and the live
loop run it like the other models. Training: the CNN as for ``--input crop`` in the chosen
mode (fast: frozen backbone; full: fine-tuned first), then a head on both feature sets, with
the standardisation of each feature inside the graph (pooled CNN features and landmark
coordinates differ in scale by orders of magnitude).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from edge_app.dataset.samples import Dataset, Sample
from edge_app.dataset.subjects import SubjectScan
from edge_app.errors import DatasetError
from edge_app.model.bundle import Bundle
from edge_app.model.inputs import BOTH as BOTH_INPUT
from edge_app.model.inputs import LANDMARK_LAYOUT, InputPlan
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import feature_size, landmark_features
from edge_app.tasks.spec import TaskSpec
from edge_app.train.candidate import Candidate, TrainJob, View, input_size, split
from edge_app.train.fitting import predict, view_features
from edge_app.train.inputs.base import TrainingInput, feature_schema
from edge_app.train.inputs.frame import fit_cnn
from edge_app.train.landmark_mlp import augment_views
from edge_app.train.network import EdgeModel, build_model
from edge_app.train.subjects import crop_dataset
from edge_app.train.torch_data import sizes_of

log = logging.getLogger(__name__)


class FusedHead(nn.Module):
    """Standardise the joined features (statistics of the training set), then the net."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, width: int, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))

    def set_statistics(self, z: np.ndarray, blocks: Sequence[int]) -> None:
        """Centre the features and scale each block (CNN, landmarks) to the same total
        variance, keeping the scales within a block: thousands of pooled CNN features would
        otherwise drown a few dozen landmark coordinates in a ridge fit or a weight penalty,
        and per-feature standardisation would blow up near-constant CNN features (measured:
        ridge on simulated faces, 2.6 vs 0.007 validation RMSE)."""
        mean = z.mean(axis=0)
        total, start, scale = float(sum(blocks)), 0, []
        for width in blocks:
            part = z[:, start:start + width] - mean[start:start + width]
            norm = float(np.sqrt(np.mean(np.sum(part.astype(np.float64) ** 2, axis=1)))) or 1.0
            scale.append(np.full(width, norm / np.sqrt(total / len(blocks))))
            start += width
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.std.copy_(torch.from_numpy(np.concatenate(scale).astype(np.float32)))

    def standardize(self, z: np.ndarray) -> np.ndarray:
        return ((z - self.mean.numpy()) / self.std.numpy()).astype(np.float32)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net((z - self.mean) / self.std)


class FusedModel(nn.Module):
    """Crop pixels and landmark features in, the task's raw outputs out."""

    def __init__(self, cnn: EdgeModel, head: FusedHead) -> None:
        super().__init__()
        self.cnn, self.head = cnn, head

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.cnn.embed(images), landmarks], dim=1))


def build_fused(task: TaskSpec, arch: str, weights: str, embed_width: int, features: int) -> FusedModel:
    """A fused model for ``task``: the CNN (its own head unused) and a fused head."""
    cnn = build_model(task, arch, weights)
    cnn.head = nn.Identity()
    width = embed_width + features
    return FusedModel(cnn, FusedHead(width, task.task_kind.training().fused_net(width, task)))


def embed_width(model: EdgeModel, size: Tuple[int, int]) -> int:
    with torch.no_grad():
        return int(model.eval().embed(torch.zeros(1, 3, size[0], size[1])).shape[1])


@dataclass
class FusedData:
    """The samples with both a crop and landmarks, and their landmark features."""

    ds: Dataset                  # crops (points in crop coordinates)
    features: np.ndarray         # (N, F)
    missed: List[Sample]         # no subject, or no usable landmarks


def fused_data(ds: Dataset, subjects: Sequence[Optional[Subject]], plan: Any, schema: str) -> FusedData:
    """Crops and landmark features (of ``schema``) of the samples that have both."""
    keep, feats, subs, missed = [], [], [], []
    for s, subject in zip(ds.samples, subjects):
        found = landmark_features(subject, schema)
        if found is None:
            missed.append(s)
            continue
        keep.append(s)
        feats.append(found[0])
        subs.append(subject)
    crops, _ = crop_dataset(dataclasses.replace(ds, samples=keep), plan, SubjectScan(subs))
    width = feature_size(schema)
    return FusedData(crops, np.array(feats, np.float32).reshape(len(feats), width), missed)


@torch.no_grad()
def predict_fused(model: FusedModel, samples: Sequence[Sample], features: np.ndarray,
                  size: Tuple[int, int], device: Any, batch_size: int = 32,
                  workers: Optional[int] = None) -> np.ndarray:
    """Raw outputs for crops and their landmark features, in order."""
    emb = predict(model.cnn, samples, size, device, batch_size, workers, embed=True)
    if not len(samples):
        return np.zeros((0, 0), np.float32)
    z = torch.from_numpy(np.concatenate([emb, features], axis=1)).to(device)
    return model.head.eval()(z).float().cpu().numpy()


def train_fused(job: Any, trainer: Any) -> Any:
    """Train the CNN on crops, then the fused head (a ``edge_app.train.inputs.base.Candidate``)."""
    import time

    task, cfg, plan = job.task, job.cfg, job.plan
    kind = task.task_kind.training()
    size = input_size(cfg, task)
    view = trainer.view(job.ds, plan, job.scan, task, job.progress)
    if len(view.samples) < 4:
        raise DatasetError(f"{job.ds.root}: only {len(view.samples)} image(s) with a {plan.subject} crop and landmarks; capture more, or "
                           "train with --input crop or frame")
    level = logging.DEBUG if job.quiet else logging.INFO   # auto: the crop model said it all
    if view.missed:
        log.log(level, "left out %d image(s) without %s landmarks", len(view.missed), plan.subject)
    tr, va = split(view, job, trainer)
    log.log(level, "data: %d crops with landmarks (%d train, %d validation); model: %s + landmarks, "
            "mode %s, on %s", len(view.samples), len(tr.samples), len(va.samples), cfg.arch, cfg.mode,
            job.device)
    cnn = build_model(task, cfg.arch, cfg.weights)
    start = time.monotonic()
    fit_cnn(cnn, task, tr, va, cfg, size, job.device, job.out, job.resume, job.progress, job.cache_dir)
    # Landmark views pair with image views only where augmentation keeps labels where they
    # are (classes); moved keypoints would not match independently jittered landmarks.
    vcfg = cfg if kind.views_keep_targets else dataclasses.replace(cfg, views=0)
    cache = None if cfg.mode != "fast" or job.cache_dir is None else job.cache_dir
    x_img, y_tr, _ = view_features(cnn, tr.samples, tr.targets, kind.train_transform(task, size), vcfg,
                                   size, job.device, cache, job.progress, kind.crop_augment)
    assert tr.features is not None and va.features is not None
    x_lm, _ = augment_views(tr.features, tr.targets, vcfg.views, cfg.seed, view.schema)
    z_tr = np.concatenate([x_img, x_lm], axis=1)
    z_va = np.concatenate([predict(cnn, va.samples, size, job.device, embed=True) if va.samples else
                           np.zeros((0, x_img.shape[1]), np.float32), va.features], axis=1)
    cnn.head = nn.Identity()
    model = FusedModel(cnn, FusedHead(z_tr.shape[1], kind.fused_net(z_tr.shape[1], task)))
    model.head.set_statistics(z_tr, (x_img.shape[1], x_lm.shape[1]))
    hcfg = kind.fused_head_config(cfg)
    history, best, best_epoch = kind.fit_head(model.head.net, model.head.standardize(z_tr), y_tr,
                                              model.head.standardize(z_va), va.targets, va.sizes, hcfg,
                                              task, job.device)
    seconds = time.monotonic() - start
    model.cpu().eval()
    with torch.no_grad():
        outputs = model.head(torch.from_numpy(z_va.astype(np.float32))).numpy()
    metrics = kind.metrics(outputs, va.targets, task, va.sizes) if len(va.samples) else {}
    log.log(level, "trained the crop CNN and the fused head in %.1f s; validation: %s", seconds,
            kind.describe(metrics) if metrics else "n/a")
    fused_plan = dataclasses.replace(plan, input=BOTH_INPUT.name, features=int(view.features.shape[1]),
                                     embed=int(x_img.shape[1]), layout=LANDMARK_LAYOUT,
                                     schema=view.schema)
    timings = {"train_seconds": round(seconds, 2), "feature_seconds": 0.0,
               "images_per_second": None, "feature_cache_hit": False}
    return Candidate(plan=fused_plan, model=model, arch=cfg.arch, weights=cfg.weights,
                     input_size=size, metrics=metrics, history=history, best_epoch=best_epoch,
                     train_count=len(tr.samples), val=va,
                     found_rate=len(view.samples) / max(1, len(job.ds.samples)), timings=timings)


class BothTraining(TrainingInput):
    """Crop CNN features and landmark features into one head (train.fused)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        schema = feature_schema(plan, scan)
        fd = fused_data(ds, scan.subjects, plan, schema)
        return View(list(fd.ds.samples), task.task_kind.training().targets(fd.ds),
                    sizes_of(fd.ds.samples), fd.features, fd.missed, schema)

    def train(self, job: TrainJob) -> Candidate:
        return train_fused(job, self)

    def build(self, bundle: Bundle) -> Any:
        return build_fused(bundle.task, bundle.arch, "none", bundle.plan.embed, bundle.plan.features)

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        assert view.features is not None
        return predict_fused(model, view.samples, view.features, size, device)


BOTH = BothTraining()
