"""``dataset.yaml``: what a dataset folder in this project's layout holds."""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Sequence

from edge_app.camera.rotation import ACCEPTED, ROTATIONS
from edge_app.dataset.atomic import atomic_write_text
from edge_app.dataset.samples import LABELS_FILE, META_FILE, NATIVE_FORMAT
from edge_app.errors import DatasetError, did_you_mean
from edge_app.tasks.kinds import TASK_KINDS
from edge_app.tasks.safe_yaml import load_yaml
from edge_app.tasks.spec import TaskSpec

META_KEYS = ("format", "version", "task", "kind", "classes", "points", "coords", "labels_file",
             "source", "crops", "rotate")
COORDS = ("normalized", "pixels")


def meta_for(task: TaskSpec) -> Dict[str, Any]:
    """The metadata of a new dataset for ``task``."""
    meta: Dict[str, Any] = {"format": NATIVE_FORMAT, "version": 1, "task": task.name,
                            "kind": task.kind, task.task_kind.labels_key: list(task.labels)}
    if task.task_kind.dataset_layout == "csv":
        meta.update(coords="normalized", labels_file=LABELS_FILE)
    return meta


def write_meta(root: Path, meta: Dict[str, Any]) -> None:
    """Write ``dataset.yaml`` atomically."""
    import yaml

    atomic_write_text(root / META_FILE, yaml.safe_dump(meta, sort_keys=False))


def read_meta(root: Path) -> Dict[str, Any]:
    """Read and check ``dataset.yaml``; one-line errors name the file and the key. Label lists
    come back as lists of text (a bare number in YAML is taken as its text)."""
    path = root / META_FILE
    meta = load_yaml(path, DatasetError)
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a mapping (format, kind, classes or points)")
    for key in meta:
        if key not in META_KEYS:
            raise DatasetError(f"{path}: key '{key}': unknown key{did_you_mean(str(key), META_KEYS)}")
    if "kind" not in meta:
        raise DatasetError("{}: key 'kind': missing; one of {}".format(path, ", ".join(TASK_KINDS)))
    for key, check in CHECKS.items():
        if key in meta:
            problem = check(meta[key])
            if problem:
                raise DatasetError(f"{path}: key '{key}': {problem}")
    for key in ("classes", "points"):
        if key in meta:
            meta[key] = [str(v) for v in meta[key]]
    return meta


def _shown(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _text(value: Any) -> str:
    return "" if _is_text(value) else f"expected text, got {_shown(value)}"


def _one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return ""
        return "{} is not one of {}".format(_shown(value), ", ".join(choices))
    return check


def _names(value: Any) -> str:
    if not isinstance(value, list):
        return f"expected a list of names, e.g. [a, b], got {_shown(value)}"
    bad = [v for v in value if not _is_text(v)]
    return f"entry {_shown(bad[0])} is not a name" if bad else ""


def _version(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected a whole number, got {_shown(value)}"
    return "" if value == 1 else f"version {value} is not one this edge-app reads (1)"


def _labels_file(value: Any) -> str:
    # A file of the dataset: a relative name that stays inside it.
    if not isinstance(value, str) or not value.strip():
        return f"expected a file name, e.g. {LABELS_FILE}, got {_shown(value)}"
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if PurePosixPath(value).is_absolute() or ".." in parts:
        return f"'{value}' must name a file inside the dataset, e.g. {LABELS_FILE}"
    return ""


def _mapping(value: Any) -> str:
    return "" if isinstance(value, dict) else f"expected a mapping, got {_shown(value)}"


def _rotate(value: Any) -> str:
    # The clockwise turn that makes every stored image upright (a property of the camera).
    if isinstance(value, bool) or not isinstance(value, int) or value not in ROTATIONS:
        return f"{_shown(value)} is not a quarter turn; use {ACCEPTED}"
    return ""


def _flag(value: Any) -> str:
    return "" if isinstance(value, bool) else f"expected true or false, got {_shown(value)}"


# Every key of dataset.yaml and what it must hold ("" = fine, else the problem).
CHECKS: Dict[str, Callable[[Any], str]] = {
    "format": _text, "version": _version, "task": lambda v: "" if v is None else _text(v), "kind": _one_of(tuple(TASK_KINDS)),
    "classes": _names, "points": _names, "coords": _one_of(COORDS), "labels_file": _labels_file,
    "source": _mapping, "crops": _flag, "rotate": _rotate,
}
