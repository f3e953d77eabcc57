"""Writing a model bundle (layout and reading: :mod:`edge_app.model.bundle`) and loading its model
for training-side work (eval, export, the torch backend)."""
from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app import __version__
from edge_app.dataset.atomic import atomic_write_bytes, atomic_write_text, json_text
from edge_app.dataset.samples import Sample
from edge_app.errors import UserError
from edge_app.model.bundle import (
    BUNDLE_FILE,
    ONNX_FILE,
    SAMPLE_DIR,
    WEIGHTS_FILE,
    Bundle,
    read_bundle,
)
from edge_app.opencv import cv2
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

SAMPLE_SIZE = 64
# files of an earlier run in the same folder that the new model makes wrong
STALE = (ONNX_FILE, "plots/val_grid.png", "plots/confusion.png")


def write_candidate(out: Path, cand: Any, task: TaskSpec, cfg: Any, data: Path,
                    robustness: Optional[Dict[str, Any]] = None) -> Bundle:
    """Write a trained ``edge_app.train.candidate.Candidate`` as the bundle in ``out``: weights, metadata,
    history, the validation sample (with its landmark features where the model takes them),
    the robustness report (train.robustness) and plots."""
    out = Path(out)
    for name in STALE:
        if (out / name).is_file():
            (out / name).unlink()
    bundle = Bundle(path=out, task=task, arch=cand.arch, input_size=tuple(cand.input_size),  # type: ignore[arg-type]
                    plan=cand.plan, weights=cand.weights, mode=cfg.mode, metrics=cand.metrics,
                    config=cfg.to_dict(), best_epoch=cand.best_epoch, train_count=cand.train_count,
                    data=str(Path(data).resolve()), timings=cand.timings,
                    robustness=dict(robustness or {}))
    write_bundle(out, cand.model, bundle, cand.history, cand.val.samples, cand.val.targets, cfg.seed)
    if cand.val.features is not None:
        save_sample_features(out, cand.val.samples, cand.val.features, cand.val.targets, cand.val.sizes)
    _plots(out, cand, task)
    return bundle


def _plots(out: Path, cand: Any, task: TaskSpec) -> None:
    from edge_app.train import plots  # lazy: pulls in torch and matplotlib

    kind = task.task_kind.training()
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    metric = kind.headline
    plots.curves(folder / "curves.png", list(cand.history), metric, metric.replace("_", " "))
    if "confusion" in cand.metrics:
        plots.confusion(folder / "confusion.png", cand.metrics["confusion"], task.labels)
    if cand.grid_outputs is not None:
        plots.val_grid(folder / "val_grid.png", cand.val.samples, cand.grid_outputs, cand.val.targets,
                       task, kind)


def write_bundle(out: Path, model: Any, bundle: Bundle, history: List[Dict[str, Any]],
                 val: Sequence[Sample], val_targets: np.ndarray, seed: int = 0) -> Path:
    """Save the weights, the metadata and a sample of validation images into ``out``."""
    import torch
    import torchvision

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS_FILE + ".part")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / WEIGHTS_FILE)
    bundle.val_sample = _write_sample(out / SAMPLE_DIR, val, val_targets, bundle.task, seed)
    bundle.val_files = [str(s.path) for s in val]
    bundle.created = time.strftime("%Y-%m-%dT%H:%M:%S")
    bundle.versions = {"edge_app": __version__, "torch": torch.__version__,
                       "torchvision": torchvision.__version__, "python": platform.python_version()}
    atomic_write_text(out / BUNDLE_FILE, json_text(bundle.to_json(), indent=2, default=_json_default) + "\n")
    atomic_write_text(out / "history.json", json_text(history, indent=1, default=_json_default) + "\n")
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _write_sample(folder: Path, val: Sequence[Sample], targets: np.ndarray, task: TaskSpec,
                  seed: int) -> int:
    """Copy up to SAMPLE_SIZE validation images, spread over the classes, with their labels."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    kind = task.task_kind.training()
    order = np.random.default_rng(seed).permutation(len(val))
    strata = kind.strata(targets)   # round-robin over classes so that each is represented
    by_stratum: Dict[int, List[int]] = {}
    for i in order:
        by_stratum.setdefault(strata[int(i)], []).append(int(i))
    order = np.array([i for group in _interleave(list(by_stratum.values())) for i in group], np.int64)
    labels = []
    for rank, i in enumerate(order[:SAMPLE_SIZE]):
        s = val[int(i)]
        if s.crop is None:
            name = f"{rank:03d}{s.path.suffix.lower()}"
            shutil.copyfile(s.path, folder / name)
        else:   # what the model sees: the subject's crop (points are in its coordinates)
            from edge_app.train.torch_data import load_sample_image  # lazy: pulls in torch

            name = f"{rank:03d}.png"
            ok, data = cv2().imencode(".png", load_sample_image(s))
            atomic_write_bytes(folder / name, data.tobytes())
        labels.append(dict(kind.sample_label(targets[int(i)], task), image=name, source=str(s.path)))
    atomic_write_text(folder / "labels.json", json_text(labels, indent=1, default=_json_default))
    return len(labels)


def _interleave(groups: List[List[int]]) -> List[List[int]]:
    out = []
    for k in range(max((len(g) for g in groups), default=0)):
        out.append([g[k] for g in groups if k < len(g)])
    return out


def load_model(path: Path, device: Optional[str] = None) -> Tuple[Bundle, Any]:
    """The bundle and its model in eval mode (weights loaded weights_only); one line when the
    weights are missing, truncated, corrupt or of another model."""
    import torch

    bundle = read_bundle(path)
    model = bundle.plan.kind.training().build(bundle)
    weights = bundle.weights_path
    if not weights.is_file():
        raise UserError(f"{path}: missing {WEIGHTS_FILE}; retrain, or copy the whole bundle folder")
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:   # truncated zip, garbage, a pickle that is not weights, other shapes
        raise UserError(f"{weights}: the weights cannot be loaded ({_why(exc)}): the file is corrupt or from another "
                        "model; retrain, or copy the bundle again")
    model.eval()
    if device:
        model.to(device)
    return bundle, model


def _why(exc: BaseException) -> str:
    """torch's reason in a few words; never its advice to load with weights_only=False (a
    model.pt that is not plain weights may be a pickle that runs code)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "weights_only" in text or "Weights only" in text:
        return "it holds more than tensors: not a weights file, refused unread"
    return text[:160] or type(exc).__name__


def save_sample_features(out: Path, samples: Sequence[Sample], x: np.ndarray, y: np.ndarray,
                         sizes: np.ndarray) -> None:
    """``val_sample/landmarks.npz``: the landmark features, targets and scales of the images
    the bundle's validation sample holds, in its order (export parity without a detector)."""
    import io

    labels = json.loads((out / SAMPLE_DIR / "labels.json").read_text())
    index = {str(s.path): i for i, s in enumerate(samples)}
    rows = [index[item["source"]] for item in labels]
    buf = io.BytesIO()
    np.savez(buf, x=x[rows], y=y[rows], sizes=sizes[rows])
    atomic_write_bytes(out / SAMPLE_DIR / "landmarks.npz", buf.getvalue())
