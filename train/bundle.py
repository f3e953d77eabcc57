"""The model bundle: one folder per training run with everything later stages need.

    model.pt        the weights (a state_dict; loads with torch.load(weights_only=True))
    bundle.json     task spec, labels, arch, input size, normalisation, config, metrics,
                    validation file list, timings, versions
    history.json    per-epoch loss and validation metrics
    val_sample/     up to 64 validation images plus labels.json, for export parity and INT8
                    calibration on a device that has no dataset
    plots/          curves.png, confusion.png (classes), val_grid.png
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app import __version__
from edge_app.dataset.atomic import atomic_write_bytes, atomic_write_text
from edge_app.dataset.model import Sample
from edge_app.errors import UserError
from edge_app.task_spec import TaskSpec, parse_task

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.pt"
SAMPLE_DIR = "val_sample"
SAMPLE_SIZE = 64


def write_bundle(out: Path, model: Any, task: TaskSpec, meta: Dict[str, Any],
                 history: List[Dict[str, Any]], val: Sequence[Sample],
                 val_targets: np.ndarray, seed: int = 0) -> Path:
    """Save the weights, the metadata and a sample of validation images into ``out``."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS_FILE + ".part")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / WEIGHTS_FILE)
    sample = _write_sample(out / SAMPLE_DIR, val, val_targets, task, seed)
    import torchvision

    full = dict(meta, format="edge-app-bundle", version=1, task=task.to_dict(),
                kind=task.kind, labels=list(task.labels), val_files=[str(s.path) for s in val],
                val_sample=sample, created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                versions={"edge_app": __version__, "torch": torch.__version__,
                          "torchvision": torchvision.__version__, "python": platform.python_version()})
    atomic_write_text(out / BUNDLE_FILE, json.dumps(full, indent=2, default=_json_default) + "\n")
    atomic_write_text(out / "history.json", json.dumps(history, indent=1, default=_json_default) + "\n")
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
    order = np.random.default_rng(seed).permutation(len(val))
    if targets.ndim == 1:   # round-robin over classes so each is represented
        by_class: Dict[int, List[int]] = {}
        for i in order:
            by_class.setdefault(int(targets[i]), []).append(int(i))
        order = np.array([i for group in _interleave(list(by_class.values())) for i in group])
    labels = []
    for rank, i in enumerate(order[:SAMPLE_SIZE]):
        s = val[int(i)]
        if s.crop is None:
            name = "{:03d}{}".format(rank, s.path.suffix.lower())
            shutil.copyfile(s.path, folder / name)
        else:   # what the model sees: the subject's crop (points are in its coordinates)
            from edge_app.cv import cv2
            from train.data import load_sample_image

            name = "{:03d}.png".format(rank)
            ok, data = cv2().imencode(".png", load_sample_image(s))
            atomic_write_bytes(folder / name, data.tobytes())
        t = targets[int(i)]
        labels.append({"image": name, "source": str(s.path),
                       "label": task.labels[int(t)] if targets.ndim == 1 else None,
                       "points": None if targets.ndim == 1 else np.asarray(t).tolist()})
    atomic_write_text(folder / "labels.json", json.dumps(labels, indent=1, default=_json_default))
    return len(labels)


def _interleave(groups: List[List[int]]) -> List[List[int]]:
    out = []
    for k in range(max((len(g) for g in groups), default=0)):
        out.append([g[k] for g in groups if k < len(g)])
    return out


def read_bundle(path: Path) -> Dict[str, Any]:
    """The bundle's metadata, with its task spec re-validated."""
    path = Path(path).expanduser()
    meta_path = path / BUNDLE_FILE
    if not meta_path.is_file():
        raise UserError("{}: not a model bundle (no {}); pass the folder that 'edge-app train "
                        "--out' wrote".format(path, BUNDLE_FILE))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError("{}: unreadable ({})".format(meta_path, exc))
    meta["task_spec"] = parse_task(meta["task"], source=str(meta_path))
    return meta


def load_model(path: Path, device: Optional[str] = None) -> Tuple[Dict[str, Any], Any]:
    """The bundle's metadata and its model in eval mode (weights loaded weights_only)."""
    import torch

    from train.model import build_model

    meta = read_bundle(path)
    plan = meta.get("input_plan") or {}
    model: Any
    if plan.get("input") == "landmarks":
        from train.landmarks import LandmarkModel, out_features

        model = LandmarkModel(int(plan["features"]), out_features(meta["task_spec"]))
    elif plan.get("input") == "both":
        from train.fused import build_fused

        model = build_fused(meta["task_spec"], meta["arch"], "none", int(plan["embed"]))
    else:
        model = build_model(meta["task_spec"], meta["arch"], "none")
    weights = Path(path) / WEIGHTS_FILE
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError("{}: missing {}".format(path, WEIGHTS_FILE))
    model.load_state_dict(state)
    model.eval()
    if device:
        model.to(device)
    return meta, model
