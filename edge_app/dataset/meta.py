"""``dataset.yaml``: what a dataset folder in this project's layout holds."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from edge_app.dataset.atomic import atomic_write_text
from edge_app.dataset.model import LABELS_FILE, META_FILE, NATIVE_FORMAT
from edge_app.errors import DatasetError, did_you_mean
from edge_app.task_kinds import TASK_KINDS
from edge_app.task_spec import TaskSpec

META_KEYS = ("format", "version", "task", "kind", "classes", "points", "coords", "labels_file",
             "source", "crops")
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
    """Read and check ``dataset.yaml``; one-line errors name the file and the key."""
    import yaml

    path = root / META_FILE
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError("{}: cannot read ({})".format(path, str(exc).splitlines()[0]))
    if not isinstance(meta, dict):
        raise DatasetError("{}: expected a mapping (format, kind, classes or points)".format(path))
    for key in meta:
        if key not in META_KEYS:
            raise DatasetError("{}: key '{}': unknown key{}".format(
                path, key, did_you_mean(str(key), META_KEYS)))
    kind = meta.get("kind")
    if kind not in TASK_KINDS:
        raise DatasetError("{}: key 'kind': '{}' is not one of {}".format(
            path, kind, ", ".join(TASK_KINDS)))
    if meta.get("coords", "normalized") not in COORDS:
        raise DatasetError("{}: key 'coords': '{}' is not one of {}".format(
            path, meta.get("coords"), ", ".join(COORDS)))
    return meta
