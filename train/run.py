"""``edge-app train`` and ``edge-app eval``: from a dataset folder to a model bundle and back."""
from __future__ import annotations

import contextlib
import io
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
        if outside.any() and s.points is not None:
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
    """Train a model for ``task_name`` on ``data`` and write the bundle to ``out``: on whole
    frames, on the subject's crop, or on its landmarks, as ``--input`` and the data decide."""
    import torch

    task = load_task(task_name)
    cfg = build_config(dict(task.train), overrides)
    device = resolve_device(cfg.device)
    cfg = cfg.resolved(device.type == "cuda")
    torch.manual_seed(cfg.seed)
    if cfg.weights == "none":
        print("warning: --weights none trains from scratch: fine for quick checks, expect much "
              "lower accuracy than with ImageNet weights")
    ds = load_labelled(Path(data), task, fmt, "train", progress)
    plan, scan = _plan(ds, task, cfg, progress)
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    landmarks = None
    if plan.input == "landmarks" or (cfg.input == "auto" and plan.input == "crop" and not resume):
        from train.landmark_run import train_landmarks

        try:
            landmarks = train_landmarks(ds, scan.subjects, task, cfg, device)
        except DatasetError as exc:   # e.g. subjects without landmarks (declared crops)
            if plan.input == "landmarks":
                raise
            print("landmarks: not tried ({})".format(exc))
        else:
            print("landmarks: {} images, validation {} (trained in {:.1f} s)".format(
                len(landmarks.train.samples) + len(landmarks.val.samples),
                task.task_kind.training().describe(landmarks.metrics) if landmarks.metrics else "n/a",
                landmarks.seconds))
    if plan.input == "landmarks":
        return _write_landmarks(out, landmarks, task, cfg, plan, data)
    if plan.input == "both":
        return _train_both(ds, scan, plan, task, cfg, device, out, data, resume, progress, cache_dir)
    cnn = _train_cnn(ds, scan, plan, task, cfg, device, out, data, fmt, val_dir, resume, progress,
                     cache_dir)
    if landmarks is None:
        return cnn["meta"]
    return _pick_auto(ds, scan, plan, task, cfg, device, out, data, progress, cache_dir, cnn, landmarks)


def _pick_auto(ds: Dataset, scan: Any, plan: Any, task: TaskSpec, cfg: TrainConfig, device: Any,
               out: Path, data: Path, progress: bool, cache_dir: Optional[Path], cnn: Dict[str, Any],
               landmarks: Any) -> Dict[str, Any]:
    """``--input auto``: the crop CNN (its bundle already in ``out``), the landmark model and,
    in fast mode where it costs seconds (cached CNN features), the fused model; keeps the
    best on validation with misses counted, and says why."""
    import dataclasses
    import shutil

    scores = {"crop": (_overall(cnn["metrics"], plan.detection_rate or 1.0), cnn["metrics"]),
              "landmarks": (_overall(landmarks.metrics, landmarks.found_rate), landmarks.metrics)}
    fused_dir = out / ".both"
    if cfg.mode == "fast":
        from train.fused import train_fused

        with contextlib.redirect_stdout(io.StringIO()):   # its own report would repeat the crop's
            fused = train_fused(ds, scan.subjects, dataclasses.replace(plan, reason=AUTO_REASON),
                                task, cfg, device, fused_dir,
                                Path(data).resolve(), False, progress,
                                None if cache_dir is None else Path(cache_dir).expanduser())
        scores["both"] = (_overall(fused["metrics"], fused["rate"]), fused["metrics"])
    best = choose_input(scores, task.task_kind.training())
    print("input: validation with misses counted: {}; keeping {}".format(
        ", ".join("{} {}".format(k, _describe(m)) for k, (_, m) in scores.items()), best))
    try:
        if best == "landmarks":
            _clear_cnn(out)
            chosen = dataclasses.replace(plan, input="landmarks", reason=AUTO_REASON)
            return _write_landmarks(out, landmarks, task, cfg, chosen, data)
        if best == "both":
            _clear_cnn(out)
            for item in fused_dir.iterdir():
                target = out / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                item.replace(target)
            _plots(out, fused["history"], fused["metrics"], task, task.task_kind.training(), [],
                   None, fused["val"][1])
            print("bundle: {}".format(out))
            return fused["meta"]
        return cnn["meta"]
    finally:
        shutil.rmtree(fused_dir, ignore_errors=True)


# Most to least independent of the person and room the data came from (measured on real
# photos of other people: landmarks 95-98%, both 84-86%, crop 55-75% on the hand splits).
INPUT_PREFERENCE = ("landmarks", "both", "crop")
AUTO_REASON = "auto: best on validation (near ties go to landmarks, then both, then crop)"


def choose_input(scores: Dict[str, Tuple[float, Dict[str, Any]]], kind: Any) -> str:
    """The input to keep: among those within the validation noise of the best score
    (``kind.tolerance``), the one that carries best to other people. One person's validation
    photos score every input near 100%; picking the first best kept the crop model there
    (58% on other people's fingers, where the landmark model kept now scores 95%)."""
    top = max(score for score, _ in scores.values())
    near = [k for k, (score, m) in scores.items() if m and score >= top - kind.tolerance(m)]
    return min(near or [max(scores, key=lambda k: scores[k][0])], key=INPUT_PREFERENCE.index)


def _overall(metrics: Dict[str, Any], rate: float) -> float:
    """A validation score with the images lacking a usable subject counted as misses."""
    if not metrics:
        return -np.inf
    if "accuracy" in metrics:
        return float(metrics["accuracy"]) * rate
    return -float(metrics["rmse"]) / max(rate, 1e-6)


def _describe(metrics: Dict[str, Any]) -> str:
    return "{:.1%}".format(metrics["accuracy"]) if "accuracy" in metrics else "RMSE {:.4f}".format(
        metrics.get("rmse", float("nan")))


def _clear_cnn(out: Path) -> None:
    """The CNN's files that a landmark bundle does not have."""
    for name in ("model.onnx", "last.pt", "plots/val_grid.png", "plots/confusion.png"):
        if (out / name).exists():
            (out / name).unlink()


def _write_landmarks(out: Path, run: Any, task: TaskSpec, cfg: TrainConfig, plan: Any,
                     data: Path) -> Dict[str, Any]:
    from train.landmark_run import write_landmark_bundle

    meta = write_landmark_bundle(out, run, task, cfg, plan, Path(data))
    kind = task.task_kind.training()
    _plots(out, run.history, run.metrics, task, kind, [], None, run.val.y)
    print("trained a landmark model in {:.1f} s; validation: {}".format(
        run.seconds, kind.describe(run.metrics) if run.metrics else "n/a"))
    print("bundle: {}".format(out))
    return meta


def _train_both(ds: Dataset, scan: Any, plan: Any, task: TaskSpec, cfg: TrainConfig, device: Any,
                out: Path, data: Path, resume: bool, progress: bool, cache_dir: Optional[Path]
                ) -> Dict[str, Any]:
    from train.fused import train_fused

    run = train_fused(ds, scan.subjects, plan, task, cfg, device, out, Path(data).resolve(), resume,
                      progress, None if cache_dir is None else Path(cache_dir).expanduser())
    _, va_y = run["val"]
    _plots(out, run["history"], run["metrics"], task, task.task_kind.training(), [], None, va_y)
    return run["meta"]


def _train_cnn(ds: Dataset, scan: Any, plan: Any, task: TaskSpec, cfg: TrainConfig, device: Any,
               out: Path, data: Path, fmt: str, val_dir: Optional[Path], resume: bool,
               progress: bool, cache_dir: Optional[Path]) -> Dict[str, Any]:
    """The CNN on whole frames or crops; writes its bundle and returns its metrics and meta."""
    from train.bundle import write_bundle
    from train.data import sizes_of
    from train.engine import predict
    from train.model import build_model
    from train.subjects import apply_plan

    size = _input_size(cfg, task)
    kind = task.task_kind.training()
    ds, missed = apply_plan(ds, plan, scan)
    if missed:
        print("left out {} image(s) with no {} found (see: edge-app data info --task {} --data "
              "{})".format(len(missed), plan.subject, task.name, ds.root))
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
    va_sizes = sizes_of(va_s)
    result = fit_cnn(model, task, (tr_s, tr_y), (va_s, va_y), cfg, size, device, out, resume,
                     progress, cache_dir)
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
    return {"meta": meta, "metrics": metrics}


def _input_size(cfg: TrainConfig, task: TaskSpec) -> Tuple[int, int]:
    h, w = cfg.input_size or task.input_size
    return int(h), int(w)


def fit_cnn(model: Any, task: TaskSpec, train: Tuple[list, np.ndarray], val: Tuple[list, np.ndarray],
            cfg: TrainConfig, size: Tuple[int, int], device: Any, out: Path, resume: bool,
            progress: bool, cache_dir: Optional[Path]) -> Any:
    """Fast: the head on cached features of a frozen backbone. Full: a linear-probe warm
    start, then fine-tuning, keeping the warm start unless an epoch beats it."""
    from train.data import sizes_of
    from train.engine import fit_fast, fit_full

    kind = task.task_kind.training()
    va_sizes = sizes_of(val[0])
    if cfg.mode == "fast":
        cache = None if cache_dir is None else Path(cache_dir).expanduser()
        return fit_fast(model, kind, task, train, val, va_sizes, cfg, size, device, cache, progress)
    baseline = None
    if not resume:   # linear probe first: fine-tuning starts from a head that fits
        import dataclasses

        probe = fit_fast(model, kind, task, train, val, va_sizes,
                         dataclasses.replace(cfg, views=0, epochs=30), size, device, None, progress)
        print("head warm start (frozen backbone): {}".format(
            kind.describe(probe.best) if probe.best else "done"))
        baseline = probe.best or None
        for p in model.features.parameters():
            p.requires_grad_(True)
    result = fit_full(model, kind, task, train, val, va_sizes, cfg, size, device, out / "last.pt",
                      resume, progress,
                      on_epoch=lambda r: print("epoch {}: loss {:.4f}{}".format(
                          r["epoch"], r["loss"], ", " + kind.describe(r["val"]) if r["val"] else "")),
                      baseline=None if resume else baseline)
    if result.best_epoch == 0:
        print("kept the warm-start model: every fine-tuning epoch scored clearly below it on validation")
    return result


def _plan(ds: Dataset, task: TaskSpec, cfg: TrainConfig, progress: bool) -> Tuple[Any, Any]:
    """Crops, landmarks or whole frames, as ``cfg.input`` and the detection rate say."""
    from train.subjects import plan_input, report

    plan, scan = plan_input(ds, task, cfg, progress)
    if scan is not None:
        report(ds, scan, task.subject)
    print("input: {} ({})".format(plan.input, plan.reason))
    return plan, scan


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


def _landmark_outputs(model: Any, ds: Dataset, task: TaskSpec, plan: Any, progress: bool) -> Tuple[Any, ...]:
    """A landmark model's outputs and targets (points in the subjects' own frames, with their
    scales as sizes so that errors come out in pixels), and the samples without landmarks."""
    from edge_app.subject.dataset import scan_subjects
    from train.landmarks import landmark_data
    from train.landmarks import predict as predict_landmarks

    scan = scan_subjects(ds, plan.subject, plan.provider, plan.crops, progress)
    data, missed = landmark_data(ds, scan.subjects, task.task_kind.training().targets(ds))
    width = 2 * len(task.points) if task.points else len(task.classes)
    outputs = predict_landmarks(model.cpu(), data.x) if len(data.x) else np.zeros((0, width), np.float32)
    return outputs, data.y, data.sizes, missed


def _fused_outputs(model: Any, ds: Dataset, task: TaskSpec, plan: Any, meta: Dict[str, Any],
                   device: Any, progress: bool) -> Tuple[Any, ...]:
    """A fused model's outputs on crops and landmarks, and the samples lacking either."""
    from edge_app.subject.dataset import scan_subjects
    from train.data import sizes_of
    from train.fused import fused_data, predict_fused

    scan = scan_subjects(ds, plan.subject, plan.provider, plan.crops, progress)
    fd = fused_data(ds, scan.subjects, plan)
    width = 2 * len(task.points) if task.points else len(task.classes)
    outputs = predict_fused(model, fd.ds.samples, fd.features, tuple(meta["input_size"]), device) \
        if fd.ds.samples else np.zeros((0, width), np.float32)
    return outputs, task.task_kind.training().targets(fd.ds), sizes_of(fd.ds.samples), fd.missed


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
    import dataclasses

    from train.subjects import apply_plan, declared_crops, plan_from_meta

    plan = plan_from_meta(meta)
    plan = dataclasses.replace(plan, crops=crops or declared_crops(Path(data)))
    start = time.monotonic()
    if plan.input == "landmarks":
        outputs, targets, sizes, missed = _landmark_outputs(model, ds, task, plan, progress)
    elif plan.input == "both":
        outputs, targets, sizes, missed = _fused_outputs(model, ds, task, plan, meta, device, progress)
    else:
        ds, missed = apply_plan(ds, plan, progress=progress)
        targets, sizes = kind.targets(ds), sizes_of(ds.samples)
        if ds.samples:
            outputs = predict(model, ds.samples, tuple(meta["input_size"]), device, progress=progress)
        else:
            outputs = np.zeros((0, len(task.labels) * (2 if targets.ndim > 1 else 1)), np.float32)
    metrics = kind.metrics(outputs, targets, task, sizes)
    if plan.input in ("crop", "landmarks", "both"):   # a missed subject is a wrong answer, not skipped
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
