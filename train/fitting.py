"""The two ways to train: ``fast`` (frozen backbone, cached features of a few augmented views,
a head trained in seconds) and ``full`` (fine-tune everything), plus batched prediction."""
from __future__ import annotations

import hashlib
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from edge_app.dataset.atomic import json_text
from edge_app.dataset.samples import Sample
from edge_app.errors import UserError
from edge_app.tasks.train_config import TrainConfig
from edge_app.train import progress as progress_events
from edge_app.train.augment import Transform, eval_transform
from edge_app.train.network import EdgeModel, freeze_backbone, freeze_batchnorm, param_groups
from edge_app.train.progress import Bar
from edge_app.train.torch_data import CropAugment, ImageDataset, loader

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """Per-epoch history, the best epoch's metrics and the time spent."""

    history: List[Dict[str, Any]] = field(default_factory=list)
    best: Dict[str, Any] = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    images_seen: int = 0
    feature_seconds: float = 0.0
    cache_hit: bool = False


def _bar(total: int, desc: str, enabled: bool) -> Any:
    return Bar(total, desc, enabled)


@torch.no_grad()
def predict(model: EdgeModel, samples: Sequence[Sample], size: Tuple[int, int], device: torch.device,
            batch_size: int = 32, workers: Optional[int] = None, embed: bool = False,
            transform: Optional[Transform] = None, progress: bool = False) -> np.ndarray:
    """Model outputs (or pooled features with ``embed``) for ``samples``, in order."""
    model.eval()
    ds = ImageDataset(samples, [0] * len(samples), transform or eval_transform(size))
    outs = []
    bar = _bar(len(samples), "features" if embed else "predicting", progress)
    for images, _ in loader(ds, batch_size, False, workers, lambda t: torch.zeros(len(t))):
        images = images.to(device)
        out = model.embed(images) if embed else model(images)
        outs.append(out.float().cpu().numpy())
        bar.update(len(images))
    bar.close()
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


# -- fast mode ----------------------------------------------------------------------------
def feature_key(cfg: TrainConfig, samples: Sequence[Sample], size: Tuple[int, int], kind: str) -> str:
    """Cache key: everything the cached features depend on. A file gone since the dataset was
    read (deleted from the studio or a shell while training) counts as missing here rather than
    stopping training with a traceback: the loader then names it, in one line, if it is read."""
    h = hashlib.sha1()
    weights = cfg.weights
    if Path(weights).is_file():
        weights += f":{Path(weights).stat().st_mtime_ns}"
    # The last item versions the preprocessing and augmentation code: bump it when they
    # change, or cached features would no longer match what eval and the live loop compute.
    h.update(json_text([cfg.arch, weights, list(size), cfg.views, cfg.seed, kind, "v4"]).encode())
    for s in samples:
        try:
            st = s.path.stat()
            stamp = f"{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{s.path}|{stamp}|{s.crop}\n".encode())
    return h.hexdigest()[:20]


def view_features(model: EdgeModel, samples: Sequence[Sample], targets: np.ndarray,
                  train_tf: Transform, cfg: TrainConfig, size: Tuple[int, int],
                  device: torch.device, cache: Optional[Path], progress: bool,
                  crop_augment: CropAugment = CropAugment()) -> Tuple[np.ndarray, np.ndarray, bool]:
    """Features of one clean view plus ``cfg.views`` augmented views per image, and their
    targets (augmentation moves keypoints). Cached on disk by :func:`feature_key`."""
    path = None
    if cache is not None:
        path = cache / "{}.npz".format(feature_key(cfg, samples, size, f"{type(train_tf).__name__}|{crop_augment}"))
        if path.is_file():
            data = np.load(path)
            return data["x"].astype(np.float32), data["y"], True
    torch.manual_seed(cfg.seed)
    xs = [predict(model, samples, size, device, cfg.batch_size, cfg.workers, embed=True,
                  progress=progress)]
    ys = [targets]
    for v in range(cfg.views):
        ds = ImageDataset(samples, list(targets), train_tf, crop_augment)
        feats, labels = [], []
        bar = _bar(len(samples), f"augmented view {v + 1}/{cfg.views}", progress)
        with torch.no_grad():
            model.eval()
            for images, target in loader(ds, cfg.batch_size, False, cfg.workers, _stack, seed=cfg.seed + v):
                feats.append(model.embed(images.to(device)).float().cpu().numpy())
                labels.append(target.numpy())
                bar.update(len(images))
        bar.close()
        xs.append(np.concatenate(feats))
        ys.append(np.concatenate(labels))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part.npz")
            np.savez(tmp, x=x.astype(np.float16), y=y)
            tmp.replace(path)
        except OSError:
            pass   # a cache that cannot be written only costs time
    return x, y, False


def _stack(targets: Sequence[Any]) -> torch.Tensor:
    return torch.as_tensor(np.stack([np.asarray(t) for t in targets]))


def fit_fast(model: EdgeModel, kind: Any, task: Any, train: Tuple[Sequence[Sample], np.ndarray],
             val: Tuple[Sequence[Sample], np.ndarray], val_sizes: np.ndarray, cfg: TrainConfig,
             size: Tuple[int, int], device: torch.device, cache: Optional[Path],
             progress: bool = True) -> FitResult:
    """Frozen backbone: features once, then the head trained on them."""
    result = FitResult()
    freeze_backbone(model)
    model.to(device)
    start = time.monotonic()
    x_tr, y_tr, hit = view_features(model, train[0], train[1], kind.train_transform(task, size),
                                    cfg, size, device, cache, progress, kind.crop_augment)
    x_val = predict(model, val[0], size, device, cfg.batch_size, cfg.workers, embed=True,
                    progress=progress) if len(val[0]) else np.zeros((0, x_tr.shape[1]), np.float32)
    result.feature_seconds = time.monotonic() - start
    result.cache_hit = hit
    history, best, best_epoch = kind.fit_head(model.head, x_tr, y_tr, x_val, val[1], val_sizes,
                                              cfg, task, device)
    result.history, result.best, result.best_epoch = history, best, best_epoch
    result.seconds = time.monotonic() - start
    result.images_seen = len(x_tr)   # image views through the backbone (the costly part)
    return result


# -- full mode ----------------------------------------------------------------------------
def fit_full(model: EdgeModel, kind: Any, task: Any, train: Tuple[Sequence[Sample], np.ndarray],
             val: Tuple[Sequence[Sample], np.ndarray], val_sizes: np.ndarray, cfg: TrainConfig,
             size: Tuple[int, int], device: torch.device, checkpoint: Path,
             resume: bool = False, progress: bool = True,
             on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
             baseline: Optional[Dict[str, Any]] = None) -> FitResult:
    """Fine-tune everything. Each epoch is checkpointed (``last.pt``); Ctrl-C saves and stops;
    ``resume`` continues from the checkpoint. ``baseline``: the validation metrics of the
    model as it starts (the linear probe), kept as "epoch 0" unless an epoch comes within the
    validation noise of the best score (``kind.tolerance``), so fine-tuning a few hundred images
    cannot end clearly worse than the frozen backbone did. Among candidates within that noise
    the latest is kept: on one person's photos every candidate scores near 100%, and picking
    by a single validation image picked the warm start over the fine-tuned model by chance."""
    cuda = device.type == "cuda"
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(model, cfg.lr or 3e-3, cfg.weight_decay),
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], pct_start=0.15,
        total_steps=(cfg.epochs or 1) * max(1, math.ceil(len(train[0]) / cfg.batch_size)))
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    result, best_state, best_score, stale, first = FitResult(), None, -math.inf, 0, 1
    if resume:
        first, best_state, best_score, stale = _restore(checkpoint, model, opt, sched, scaler, result)
    elif baseline:
        best_state, best_score = _cpu_state(model), kind.score(baseline)
        result.best, result.best_epoch = baseline, 0
    loss_fn = kind.loss_fn(train[1], len(task.labels), cfg.label_smoothing, cfg.balance)
    ds = ImageDataset(train[0], list(train[1]), kind.train_transform(task, size), kind.crop_augment)
    dl = loader(ds, cfg.batch_size, True, cfg.workers, kind.batch_target, pin=cuda, seed=cfg.seed)
    start = time.monotonic() - result.seconds
    epoch = first - 1
    try:
        for epoch in range(first, (cfg.epochs or 1) + 1):
            model.train()
            freeze_batchnorm(model)
            total, seen = 0.0, 0
            bar = _bar(len(ds), f"epoch {epoch}/{cfg.epochs}", progress)
            for images, target in dl:
                images = images.to(device, non_blocking=True)
                if cuda:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, enabled=cuda):
                    loss = loss_fn(model(images), target.to(device))
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                with warnings.catch_warnings():
                    # AMP's scaler skips a step whose gradients overflowed (usually the first):
                    # PyTorch then warns that the schedule stepped before the optimiser.
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                    sched.step()
                total += float(loss.detach()) * len(images)
                seen += len(images)
                bar.update(len(images))
                bar.set_postfix(loss=f"{total / seen:.4f}")
            bar.close()
            result.images_seen += seen
            out = predict(model, val[0], size, device, cfg.batch_size, cfg.workers) if len(val[0]) else None
            metrics = kind.metrics(out, val[1], task, val_sizes) if out is not None else {}
            loss = total / max(seen, 1)
            record = {"epoch": epoch, "loss": loss, "val": metrics, "seconds": time.monotonic() - start}
            result.history.append(record)
            progress_events.epoch(record, "epoch {}: loss {:.4f}{}".format(
                epoch, loss, ", " + kind.describe(metrics) if metrics else ""))
            if on_epoch:
                on_epoch(record)
            keep, best_score, stale = choose(kind.score(metrics) if metrics else -loss,
                                             kind.tolerance(metrics) if metrics else 0.0,
                                             best_score, stale)
            if keep:
                best_state, result.best, result.best_epoch = _cpu_state(model), metrics, epoch
            result.seconds = time.monotonic() - start
            _save(checkpoint, model, opt, sched, scaler, result, epoch, best_state, best_score, stale)
            if stale >= cfg.patience:
                break
    except KeyboardInterrupt:
        # The checkpoint on disk is the end of the last whole epoch: resuming repeats this one.
        if not checkpoint.is_file():
            raise UserError(f"interrupted during epoch {epoch}: no epoch finished, nothing saved")
        raise UserError(f"interrupted during epoch {epoch}: progress up to epoch {epoch - 1} is saved in {checkpoint}; "
                        "continue with the same command plus --resume")
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def choose(score: float, tolerance: float, best_score: float, stale: int) -> Tuple[bool, float, int]:
    """Whether to keep the newest epoch, the best score so far and the epochs since it rose.
    The newest epoch is kept when it scores within ``tolerance`` (the validation noise) of
    the best so far, so a near tie goes to the later, more fine-tuned model."""
    keep = score >= best_score - tolerance
    stale = 0 if score > best_score + 1e-6 else stale + 1
    return keep, max(best_score, score), stale


def _cpu_state(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save(path: Path, model: Any, opt: Any, sched: Any, scaler: Any, result: FitResult,
          epoch: int, best_state: Any, best_score: float, stale: int) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save({"model": _cpu_state(model), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "best_state": best_state, "best_score": best_score, "stale": stale,
                "history": result.history, "best": result.best, "best_epoch": result.best_epoch,
                "seconds": result.seconds, "images_seen": result.images_seen}, str(tmp))
    tmp.replace(path)


def _restore(path: Path, model: Any, opt: Any, sched: Any, scaler: Any,
             result: FitResult) -> Tuple[int, Any, float, int]:
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint at {path}; start without --resume")
    ck = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    scaler.load_state_dict(ck["scaler"])
    result.history, result.best, result.best_epoch = ck["history"], ck["best"], ck["best_epoch"]
    result.seconds, result.images_seen = ck["seconds"], ck["images_seen"]
    log.info("resuming after epoch %s from %s", ck["epoch"], path)
    return int(ck["epoch"]) + 1, ck["best_state"], float(ck["best_score"]), int(ck["stale"])
