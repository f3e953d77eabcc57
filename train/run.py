"""``edge-app train`` and ``edge-app eval``: from a dataset folder to a model bundle and back."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.formats import ReadOptions, read_dataset
from edge_app.dataset.match import match_task
from edge_app.dataset.model import Dataset
from edge_app.errors import DatasetError, UserError
from edge_app.task_spec import TaskSpec, load_task
from train.config import TrainConfig, build_config

log = logging.getLogger("edge_app.train")


def resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device {}: this torch has no CUDA device; use --device cpu".format(name))
    return torch.device(name)


def load_labelled(data: Path, task: TaskSpec, fmt: str, purpose: str,
                  progress: bool) -> Dataset:
    """Read, verify and line up a dataset with the task; problems are reported, not fatal."""
    ds = read_dataset(data, fmt, ReadOptions()).verify(progress=progress)
    if ds.problems:
        print("skipped {} unreadable file(s) or row(s) in {}, e.g. {}".format(
            len(ds.problems), data, ds.problems[0]))
    ds = match_task(ds, task, purpose)
    for note in ds.notes:
        print("note: " + note)
    if task.task_kind.dataset_layout == "csv":
        _mask_outside(ds)
    return ds


def _mask_outside(ds: Dataset) -> None:
    """Points outside the image can't be right: treated as missing, with a warning."""
    bad = 0
    for s in ds.samples:
        pts = s.normalized_points(ds.coords)
        outside = ~np.isnan(pts[:, 0]) & ((pts < 0) | (pts > 1)).any(axis=1)
        if outside.any():
            bad += 1
            s.points = s.points.copy()
            s.points[outside] = np.nan
    if bad:
        print("warning: {} image(s) have a point outside the image; those points are ignored"
              .format(bad))


def _split(ds: Dataset, targets: np.ndarray, cfg: TrainConfig, val_dir: Optional[Path],
           task: TaskSpec, fmt: str, progress: bool, plan: Any
           ) -> Tuple[Tuple[list, np.ndarray], Tuple[list, np.ndarray]]:
    from train.split import split_indices, strata_for
    from train.subjects import apply_plan

    kind = task.task_kind.training()
    if val_dir is not None:
        val_ds, missed = apply_plan(load_labelled(val_dir, task, fmt, "eval", progress), plan,
                                    progress=progress)
        if missed:
            print("validation: no {} found in {} image(s); left out".format(plan.subject, len(missed)))
        return (ds.samples, targets), (val_ds.samples, kind.targets(val_ds))
    tr, va = split_indices(ds.samples, strata_for(targets), cfg.val_fraction, cfg.seed, cfg.group)
    pick = lambda idx: ([ds.samples[i] for i in idx], targets[idx])  # noqa: E731
    return pick(tr), pick(va)


def train(task_name: str, data: Path, out: Path, overrides: Mapping[str, Any], fmt: str = "auto",
          val_dir: Optional[Path] = None, resume: bool = False, progress: bool = True,
          cache_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Train a model for ``task_name`` on ``data`` and write the bundle to ``out``."""
    import torch

    from train.bundle import write_bundle
    from train.data import sizes_of
    from train.engine import fit_fast, fit_full, predict
    from train.model import build_model

    task = load_task(task_name)
    cfg = build_config(dict(task.train), overrides)
    device = resolve_device(cfg.device)
    cfg = cfg.resolved(device.type == "cuda")
    torch.manual_seed(cfg.seed)
    size = tuple(cfg.input_size or task.input_size)
    kind = task.task_kind.training()
    if cfg.weights == "none":
        print("warning: --weights none trains from scratch: fine for quick checks, expect much "
              "lower accuracy than with ImageNet weights")
    ds = load_labelled(Path(data), task, fmt, "train", progress)
    ds, plan = _subject_stage(ds, task, cfg, progress)
    targets = kind.targets(ds)
    (tr_s, tr_y), (va_s, va_y) = _split(ds, targets, cfg, val_dir, task, fmt, progress, plan)
    if len(tr_s) < 2:
        raise DatasetError("{}: only {} training image(s); capture more".format(data, len(tr_s)))
    if not len(va_s):
        print("warning: no validation images (dataset too small); the last epoch is kept")
    print("data: {} images ({} train, {} validation) from {}".format(
        len(tr_s) + len(va_s), len(tr_s), len(va_s), data))
    print("model: {} with {} weights, input {}x{}, mode {}, on {}".format(
        cfg.arch, cfg.weights, size[1], size[0], cfg.mode, device))
    model = build_model(task, cfg.arch, cfg.weights)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    va_sizes = sizes_of(va_s)
    if cfg.mode == "fast":
        cache = None if cache_dir is None else Path(cache_dir).expanduser()
        result = fit_fast(model, kind, task, (tr_s, tr_y), (va_s, va_y), va_sizes, cfg, size,
                          device, cache, progress)
    else:
        baseline = None
        if not resume:   # linear probe first: fine-tuning starts from a head that fits
            import dataclasses

            probe = fit_fast(model, kind, task, (tr_s, tr_y), (va_s, va_y), va_sizes,
                             dataclasses.replace(cfg, views=0, epochs=30), size, device, None, progress)
            print("head warm start (frozen backbone): {}".format(
                kind.describe(probe.best) if probe.best else "done"))
            baseline = probe.best or None
            for p in model.features.parameters():
                p.requires_grad_(True)
        result = fit_full(model, kind, task, (tr_s, tr_y), (va_s, va_y), va_sizes, cfg, size,
                          device, out / "last.pt", resume, progress,
                          on_epoch=lambda r: print("epoch {}: loss {:.4f}{}".format(
                              r["epoch"], r["loss"], ", " + kind.describe(r["val"]) if r["val"] else "")),
                          baseline=None if resume else baseline)
        if result.best_epoch == 0:
            print("kept the warm-start model: no fine-tuning epoch beat it on validation")
    outputs = predict(model, va_s, size, device, cfg.batch_size, cfg.workers) if len(va_s) else None
    metrics = kind.metrics(outputs, va_y, task, va_sizes) if outputs is not None else {}
    meta = {"arch": cfg.arch, "weights": cfg.weights, "mode": cfg.mode, "input_size": list(size),
            "input_plan": plan.to_dict(),
            "config": cfg.to_dict(), "metrics": metrics, "best_epoch": result.best_epoch,
            "train_count": len(tr_s), "data": str(Path(data).resolve()),
            "timings": {"train_seconds": round(result.seconds, 2),
                        "feature_seconds": round(result.feature_seconds, 2),
                        # full: training images per second; fast: views through the backbone
                        "images_per_second": _rate(result, cfg.mode),
                        "feature_cache_hit": result.cache_hit}}
    model.cpu()
    write_bundle(out, model, task, meta, result.history, va_s, va_y, cfg.seed)
    _plots(out, result.history, metrics, task, kind, va_s, outputs, va_y)
    print("trained in {:.1f} s{}; validation: {}".format(
        result.seconds, " (features cached)" if result.cache_hit else "",
        kind.describe(metrics) if metrics else "n/a"))
    print("bundle: {}".format(out))
    return meta


def _subject_stage(ds: Dataset, task: TaskSpec, cfg: TrainConfig, progress: bool) -> Tuple[Dataset, Any]:
    """Crops of the subjects, or whole frames, as ``cfg.input`` and the detection rate say."""
    from train.subjects import apply_plan, plan_input, report

    plan, scan = plan_input(ds, task, cfg, progress)
    if scan is not None:
        report(ds, scan, task.subject)
    print("input: {} ({})".format(plan.input, plan.reason))
    ds, missed = apply_plan(ds, plan, scan)
    if missed:
        print("left out {} image(s) with no {} found (see: edge-app data info --task {} --data "
              "{})".format(len(missed), plan.subject, task.name, ds.root))
    return ds, plan


def _rate(result: Any, mode: str) -> Optional[float]:
    seconds = result.feature_seconds if mode == "fast" else result.seconds
    if not seconds or (mode == "fast" and result.cache_hit):
        return None
    return round(result.images_seen / seconds, 1)


def _plots(out: Path, history: Sequence[Dict[str, Any]], metrics: Dict[str, Any], task: TaskSpec,
           kind: Any, samples: Sequence[Any], outputs: Optional[np.ndarray], targets: np.ndarray) -> None:
    from train import plots

    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    metric = "accuracy" if "accuracy" in metrics else "rmse_px"
    plots.curves(folder / "curves.png", list(history), metric, metric.replace("_", " "))
    if "confusion" in metrics:
        plots.confusion(folder / "confusion.png", metrics["confusion"], task.labels)
    if outputs is not None:
        plots.val_grid(folder / "val_grid.png", samples, outputs, targets, task, kind)


def evaluate(bundle: Path, data: Path, fmt: str = "auto", json_path: Optional[str] = None,
             device_name: str = "auto", progress: bool = True, crops: bool = False) -> Dict[str, Any]:
    """Metrics of a bundle on any dataset (a subset of the classes is fine)."""
    from train.bundle import load_model
    from train.data import sizes_of
    from train.engine import predict

    device = resolve_device(device_name)
    meta, model = load_model(bundle, str(device))
    task: TaskSpec = meta["task_spec"]
    kind = task.task_kind.training()
    ds = load_labelled(Path(data), task, fmt, "eval", progress)
    if not ds.samples:
        raise DatasetError("{}: no images of task '{}' to evaluate".format(data, task.name))
    from train.subjects import apply_plan, plan_from_meta

    import dataclasses

    from train.subjects import declared_crops

    plan = plan_from_meta(meta)
    plan = dataclasses.replace(plan, crops=crops or declared_crops(Path(data)))
    ds, missed = apply_plan(ds, plan, progress=progress)
    targets = kind.targets(ds)
    start = time.monotonic()
    if ds.samples:
        outputs = predict(model, ds.samples, tuple(meta["input_size"]), device, progress=progress)
    else:
        outputs = np.zeros((0, len(task.labels) * (2 if targets.ndim > 1 else 1)), np.float32)
    metrics = kind.metrics(outputs, targets, task, sizes_of(ds.samples))
    if plan.input == "crop":   # a missed subject is a wrong answer, not a skipped image
        metrics = kind.count_misses(metrics, [s.label for s in missed], task)
        print("subject: {} found in {:.0%} of {} image(s)".format(
            plan.subject, metrics["detection_rate"], metrics["n"]))
    print("evaluated {} on {} image(s) of {} in {:.1f} s: {}".format(
        bundle, metrics["n"], data, time.monotonic() - start, kind.describe(metrics)))
    if "per_class" in metrics:
        for name, acc in metrics["per_class"].items():
            print("  {:<12} {}".format(name, "n/a" if acc is None else "{:.1%}".format(acc)))
    result = dict(metrics, bundle=str(bundle), data=str(data), notes=ds.notes,
                  input=plan.input, missed_files=[str(s.path) for s in missed])
    if json_path:
        from edge_app.dataset.atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    return result
