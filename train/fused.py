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
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from edge_app.dataset.model import Dataset, Sample
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import feature_size, landmark_features
from edge_app.task_spec import TaskSpec
from train.model import EdgeModel, build_model


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


def _net(task: TaskSpec, width: int) -> nn.Module:
    """Classes: a small MLP (trained by SGD); points: the kind's linear head (ridge)."""
    kind = task.task_kind.training()
    if task.classes:
        from train.landmarks import LandmarkModel

        return LandmarkModel(width, len(task.classes))
    return kind.head(width, task)


def build_fused(task: TaskSpec, arch: str, weights: str, embed_width: int) -> FusedModel:
    """A fused model for ``task``: the CNN (its own head unused) and a fused head."""
    cnn = build_model(task, arch, weights)
    cnn.head = nn.Identity()
    width = embed_width + feature_size(str(task.subject))
    return FusedModel(cnn, FusedHead(width, _net(task, width)))


def embed_width(model: EdgeModel, size: Tuple[int, int]) -> int:
    with torch.no_grad():
        return int(model.eval().embed(torch.zeros(1, 3, size[0], size[1])).shape[1])


@dataclass
class FusedData:
    """The samples with both a crop and landmarks, and their landmark features."""

    ds: Dataset                  # crops (points in crop coordinates)
    features: np.ndarray         # (N, F)
    missed: List[Sample]         # no subject, or no usable landmarks


def fused_data(ds: Dataset, subjects: Sequence[Optional[Subject]], plan: Any) -> FusedData:
    """Crops and landmark features of the samples that have both."""
    from edge_app.subject.dataset import SubjectScan
    from train.subjects import apply_plan

    keep, feats, subs, missed = [], [], [], []
    for s, subject in zip(ds.samples, subjects):
        found = landmark_features(subject)
        if found is None:
            missed.append(s)
            continue
        keep.append(s)
        feats.append(found[0])
        subs.append(subject)
    crop_plan = dataclasses.replace(plan, input="crop")
    crops, _ = apply_plan(dataclasses.replace(ds, samples=keep), crop_plan, SubjectScan(subs))
    width = feature_size(plan.subject)
    return FusedData(crops, np.array(feats, np.float32).reshape(len(feats), width), missed)


@torch.no_grad()
def predict_fused(model: FusedModel, samples: Sequence[Sample], features: np.ndarray,
                  size: Tuple[int, int], device: Any, batch_size: int = 32,
                  workers: Optional[int] = None) -> np.ndarray:
    """Raw outputs for crops and their landmark features, in order."""
    from train.engine import predict

    emb = predict(model.cnn, samples, size, device, batch_size, workers, embed=True)
    if not len(samples):
        return np.zeros((0, 0), np.float32)
    z = torch.from_numpy(np.concatenate([emb, features], axis=1)).to(device)
    return model.head.eval()(z).float().cpu().numpy()


def train_fused(ds: Dataset, subjects: Sequence[Optional[Subject]], plan: Any, task: TaskSpec,
                cfg: Any, device: Any, out: Any, data: Any, resume: bool, progress: bool,
                cache_dir: Any) -> dict:
    """Train the CNN on crops, then the fused head; write the bundle. Returns its meta and
    validation metrics."""
    import time

    from edge_app.errors import DatasetError
    from train.bundle import write_bundle
    from train.data import sizes_of
    from train.engine import predict, view_features
    from train.landmark_run import save_sample_features
    from train.landmarks import augment_views
    from train.run import fit_cnn
    from train.split import split_indices, strata_for

    kind = task.task_kind.training()
    h, w = cfg.input_size or task.input_size
    size = (int(h), int(w))
    fd = fused_data(ds, subjects, plan)
    if len(fd.ds.samples) < 4:
        raise DatasetError("{}: only {} image(s) with a {} crop and landmarks; capture more, or "
                           "train with --input crop or frame".format(ds.root, len(fd.ds.samples),
                                                                     plan.subject))
    if fd.missed:
        print("left out {} image(s) without {} landmarks".format(len(fd.missed), plan.subject))
    targets = kind.targets(fd.ds)
    tr, va = split_indices(fd.ds.samples, strata_for(targets), cfg.val_fraction, cfg.seed, cfg.group)
    tr_s, va_s = [fd.ds.samples[i] for i in tr], [fd.ds.samples[i] for i in va]
    tr_y, va_y = targets[tr], targets[va]
    print("data: {} crops with landmarks ({} train, {} validation); model: {} + landmarks, "
          "mode {}, on {}".format(len(fd.ds.samples), len(tr), len(va), cfg.arch, cfg.mode, device))
    cnn = build_model(task, cfg.arch, cfg.weights)
    start = time.monotonic()
    fit_cnn(cnn, task, (tr_s, tr_y), (va_s, va_y), cfg, size, device, out, resume, progress, cache_dir)
    # Landmark views pair with image views only where augmentation keeps labels where they
    # are (classes); moved keypoints would not match independently jittered landmarks.
    vcfg = cfg if task.classes else dataclasses.replace(cfg, views=0)
    cache = None if cfg.mode != "fast" or cache_dir is None else cache_dir
    x_img, y_tr, _ = view_features(cnn, tr_s, tr_y, kind.train_transform(task, size), vcfg, size,
                                   device, cache, progress, kind.crop_augment)
    x_lm, _ = augment_views(fd.features[tr], tr_y, vcfg.views, cfg.seed, str(task.subject))
    z_tr = np.concatenate([x_img, x_lm], axis=1)
    z_va = np.concatenate([predict(cnn, va_s, size, device, embed=True) if va_s else
                           np.zeros((0, x_img.shape[1]), np.float32), fd.features[va]], axis=1)
    cnn.head = nn.Identity()
    model = FusedModel(cnn, FusedHead(z_tr.shape[1], _net(task, z_tr.shape[1])))
    model.head.set_statistics(z_tr, (x_img.shape[1], x_lm.shape[1]))
    hcfg = dataclasses.replace(cfg, batch_size=max(cfg.batch_size, 64), epochs=max(cfg.epochs or 0, 150)) \
        if task.classes else cfg
    va_sizes = sizes_of(va_s)
    history, best, best_epoch = kind.fit_head(model.head.net, model.head.standardize(z_tr), y_tr,
                                              model.head.standardize(z_va), va_y, va_sizes, hcfg,
                                              task, device)
    seconds = time.monotonic() - start
    model.cpu().eval()
    with torch.no_grad():
        outputs = model.head(torch.from_numpy(z_va.astype(np.float32))).numpy()
    metrics = kind.metrics(outputs, va_y, task, va_sizes) if len(va_s) else {}
    width = fd.features.shape[1]
    meta = {"arch": cfg.arch, "weights": cfg.weights, "mode": cfg.mode, "input_size": list(size),
            "input_plan": dict(plan.to_dict(), input="both", features=width, embed=x_img.shape[1]),
            "config": cfg.to_dict(), "metrics": metrics, "best_epoch": best_epoch,
            "train_count": len(tr_s), "data": str(data),
            "timings": {"train_seconds": round(seconds, 2), "feature_seconds": 0.0,
                        "images_per_second": None, "feature_cache_hit": False}}
    write_bundle(out, model, task, meta, history, va_s, va_y, cfg.seed)
    save_sample_features(out, va_s, fd.features[va], va_y, va_sizes)
    print("trained the crop CNN and the fused head in {:.1f} s; validation: {}".format(
        seconds, kind.describe(metrics) if metrics else "n/a"))
    print("bundle: {}".format(out))
    return {"meta": meta, "metrics": metrics, "rate": len(fd.ds.samples) / max(1, len(ds.samples)),
            "history": history, "outputs": outputs, "val": (va_s, va_y)}
