"""The model bundle's metadata (``bundle.json``) as one typed object, read and validated here
and nowhere else, without torch: the device reads it with numpy alone.

A bundle is one folder per training run::

    model.pt        the weights (a state_dict; loads with torch.load(weights_only=True))
    bundle.json     this module's :class:`Bundle`
    history.json    per-epoch loss and validation metrics
    val_sample/     up to 64 validation images plus labels.json (and landmarks.npz for models
                    that take landmarks), for export parity and INT8 calibration
    plots/          curves.png, confusion.png (classes), val_grid.png
    model.onnx      after ``edge-app export``
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edge_app.errors import UserError
from edge_app.model.inputs import InputPlan
from edge_app.tasks.spec import TaskSpec, parse_task

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.pt"
ONNX_FILE = "model.onnx"
SAMPLE_DIR = "val_sample"
FORMAT = "edge-app-bundle"
# 1: the first release; 2: the input plan records its landmark feature layout. Version 1
# bundles load (their layout was 1); bundles of a later version are refused.
VERSION = 2


@dataclass
class Bundle:
    """Everything later stages read from a bundle folder."""

    path: Path
    task: TaskSpec
    arch: str
    input_size: Tuple[int, int]                 # (height, width); landmark models: (1, F)
    plan: InputPlan
    weights: str = "none"
    mode: str = ""
    metrics: Dict[str, Any] = field(default_factory=dict)
    config: Dict[str, Any] = field(default_factory=dict)
    best_epoch: Optional[int] = None
    train_count: int = 0
    data: str = ""
    timings: Dict[str, Any] = field(default_factory=dict)
    robustness: Dict[str, Any] = field(default_factory=dict)   # train.robustness; {}: none
    val_files: List[str] = field(default_factory=list)
    val_sample: int = 0
    created: str = ""
    versions: Dict[str, str] = field(default_factory=dict)
    version: int = VERSION

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.task.labels

    @property
    def onnx(self) -> Optional[Path]:
        """The exported graph, where ``edge-app export`` has written it."""
        path = self.path / ONNX_FILE
        return path if path.is_file() else None

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    def to_json(self) -> Dict[str, Any]:
        """What ``bundle.json`` holds (the on-disk keys of version 1, plus the format)."""
        return {"format": FORMAT, "version": self.version, "task": self.task.to_dict(),
                "kind": self.task.kind, "labels": list(self.task.labels), "arch": self.arch,
                "weights": self.weights, "mode": self.mode, "input_size": list(self.input_size),
                "input_plan": self.plan.to_dict(), "config": self.config, "metrics": self.metrics,
                "best_epoch": self.best_epoch, "train_count": self.train_count, "data": self.data,
                "timings": self.timings, "robustness": self.robustness, "val_files": self.val_files,
                "val_sample": self.val_sample, "created": self.created, "versions": self.versions}


# key -> (types accepted, required)
_FIELDS: Dict[str, Tuple[Tuple[type, ...], bool]] = {
    "task": ((dict,), True), "arch": ((str,), True), "input_size": ((list,), True),
    "weights": ((str,), False), "mode": ((str,), False), "metrics": ((dict,), False),
    "config": ((dict,), False), "best_epoch": ((int, type(None)), False),
    "train_count": ((int,), False), "data": ((str,), False), "timings": ((dict,), False),
    "robustness": ((dict,), False), "val_files": ((list,), False), "val_sample": ((int,), False),
    "created": ((str,), False),
    "versions": ((dict,), False), "version": ((int,), False), "format": ((str,), False)}


def read_bundle(path: Path) -> Bundle:
    """The bundle in folder ``path``; one line naming the file and the fix when it is missing,
    unreadable, truncated, of another format or version, or has a field of the wrong type."""
    path = Path(path).expanduser()
    meta_path = path / BUNDLE_FILE
    if not meta_path.is_file():
        raise UserError(f"{path}: not a model bundle (no {BUNDLE_FILE}); pass the folder that 'edge-app train "
                        "--out' wrote")
    raw = _load_json(meta_path)
    _check_fields(raw, meta_path)
    if raw.get("format", FORMAT) != FORMAT:
        raise UserError("{}: format {!r} is not an edge-app bundle".format(meta_path, raw["format"]))
    version = int(raw.get("version", 1))
    if version > VERSION:
        raise UserError(f"{meta_path}: bundle version {version}, newer than this edge-app reads ({VERSION}); upgrade "
                        "edge-app or retrain with this one")
    size = raw["input_size"]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise UserError(f"{meta_path}: input_size must be two positive integers, got {size!r}")
    plan = InputPlan.from_dict(raw.get("input_plan"), str(meta_path))
    known = {k: raw[k] for k in _FIELDS if k in raw and k not in ("task", "input_size", "format")}
    known["version"] = version
    return Bundle(path=path, task=parse_task(raw["task"], source=str(meta_path), saved=True),
                  input_size=(int(size[0]), int(size[1])), plan=plan, **known)


def _load_json(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror or exc})")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text: the file is corrupt; retrain, or copy the bundle "
                        "again")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}): the file is truncated or corrupt; retrain, or "
                        "copy the bundle again")
    except RecursionError:   # e.g. 100000 nested brackets: not a bundle this tool wrote
        raise UserError(f"{path}: nested too deeply to be a bundle's metadata: the file is corrupt; "
                        "retrain, or copy the bundle again")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _check_fields(raw: Dict[str, Any], path: Path) -> None:
    for key, (types, required) in _FIELDS.items():
        if key not in raw:
            if required:
                raise UserError(f"{path}: the field '{key}' is missing; retrain the bundle")
            continue
        value = raw[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise UserError(f"{path}: '{key}' has the wrong type ({type(value).__name__}); retrain the bundle")
