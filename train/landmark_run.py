"""Training a landmark model end to end: split, fit, metrics, and its bundle."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edge_app.dataset.model import Dataset, Sample
from edge_app.errors import DatasetError
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import feature_size
from edge_app.task_spec import TaskSpec
from train.landmarks import LandmarkData, fit, landmark_data, predict

ARCH = "landmark_mlp"


@dataclass
class LandmarkRun:
    """A trained landmark model with what its bundle needs."""

    model: Any
    train: LandmarkData
    val: LandmarkData
    metrics: Dict[str, Any]
    history: List[Dict[str, Any]]
    best_epoch: int
    seconds: float
    found_rate: float
    missed: List[Sample] = field(default_factory=list)


def _pick(data: LandmarkData, idx: Sequence[int]) -> LandmarkData:
    return LandmarkData([data.samples[i] for i in idx], data.x[list(idx)], data.y[list(idx)],
                        [data.frames[i] for i in idx])


def train_landmarks(ds: Dataset, subjects: Sequence[Optional[Subject]], task: TaskSpec, cfg: Any,
                    device: Any) -> LandmarkRun:
    """Fit the landmark MLP on the samples whose subject has landmarks."""
    from train.split import split_indices, strata_for

    kind = task.task_kind.training()
    data, missed = landmark_data(ds, subjects, kind.targets(ds))
    if len(data.samples) < 4:
        raise DatasetError("{}: only {} image(s) with {} landmarks; capture more, or train with "
                           "--input crop or frame".format(ds.root, len(data.samples), task.subject))
    tr, va = split_indices(data.samples, strata_for(data.y if data.y.ndim == 1 else data.y[:, 0, 0]),
                           cfg.val_fraction, cfg.seed, cfg.group)
    train, val = _pick(data, tr), _pick(data, va)
    start = time.monotonic()
    model, (history, best, best_epoch) = fit(train, val, task, cfg, device)
    seconds = time.monotonic() - start
    metrics = kind.metrics(predict(model, val.x), val.y, task, val.sizes) if len(val.x) else {}
    return LandmarkRun(model, train, val, metrics, history, best_epoch, seconds,
                       len(data.samples) / max(1, len(ds.samples)), missed)


def write_landmark_bundle(out: Path, run: LandmarkRun, task: TaskSpec, cfg: Any, plan: Any,
                          data_dir: Path) -> Dict[str, Any]:
    """The bundle, as for a CNN, plus ``val_sample/landmarks.npz`` (the validation sample's
    features, targets and local scales: export parity without a detector)."""
    from train.bundle import write_bundle

    width = feature_size(task.subject)
    meta = {"arch": ARCH, "weights": "none", "mode": cfg.mode, "input_size": [1, width],
            "input_plan": dict(plan.to_dict(), features=width), "config": cfg.to_dict(),
            "metrics": run.metrics, "best_epoch": run.best_epoch, "train_count": len(run.train.samples),
            "data": str(Path(data_dir).resolve()),
            "timings": {"train_seconds": round(run.seconds, 2), "feature_seconds": 0.0,
                        "images_per_second": None, "feature_cache_hit": False}}
    write_bundle(out, run.model, task, meta, run.history, run.val.samples, run.val.y, cfg.seed)
    save_sample_features(out, run.val.samples, run.val.x, run.val.y, run.val.sizes)
    return meta


def save_sample_features(out: Path, samples: Sequence[Sample], x: np.ndarray, y: np.ndarray,
                         sizes: np.ndarray) -> None:
    """``val_sample/landmarks.npz``: the landmark features, targets and scales of the images
    the bundle's validation sample holds, in its order (export parity without a detector)."""
    import io

    from edge_app.dataset.atomic import atomic_write_bytes

    labels = json.loads((out / "val_sample" / "labels.json").read_text())
    index = {str(s.path): i for i, s in enumerate(samples)}
    rows = [index[item["source"]] for item in labels]
    buf = io.BytesIO()
    np.savez(buf, x=x[rows], y=y[rows], sizes=sizes[rows])
    atomic_write_bytes(out / "val_sample" / "landmarks.npz", buf.getvalue())
