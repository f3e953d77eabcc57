"""``dataset.yaml``: what a dataset folder in this project's layout holds."""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Sequence

from edge_app.dataset.atomic import atomic_write_text
from edge_app.dataset.model import LABELS_FILE, META_FILE, NATIVE_FORMAT
from edge_app.errors import DatasetError, did_you_mean
from edge_app.task_kinds import TASK_KINDS
from edge_app.task_spec import TaskSpec

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
    from edge_app.safe_yaml import load_yaml

    path = root / META_FILE
    meta = load_yaml(path, DatasetError)
    if not isinstance(meta, dict):
        raise DatasetError("{}: expected a mapping (format, kind, classes or points)".format(path))
    for key in meta:
        if key not in META_KEYS:
            raise DatasetError("{}: key '{}': unknown key{}".format(
                path, key, did_you_mean(str(key), META_KEYS)))
    if "kind" not in meta:
        raise DatasetError("{}: key 'kind': missing; one of {}".format(path, ", ".join(TASK_KINDS)))
    for key, check in CHECKS.items():
        if key in meta:
            problem = check(meta[key])
            if problem:
                raise DatasetError("{}: key '{}': {}".format(path, key, problem))
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
    return "" if _is_text(value) else "expected text, got {}".format(_shown(value))


def _one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return ""
        return "{} is not one of {}".format(_shown(value), ", ".join(choices))
    return check


def _names(value: Any) -> str:
    if not isinstance(value, list):
        return "expected a list of names, e.g. [a, b], got {}".format(_shown(value))
    bad = [v for v in value if not _is_text(v)]
    return "entry {} is not a name".format(_shown(bad[0])) if bad else ""


def _version(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return "expected a whole number, got {}".format(_shown(value))
    return "" if value == 1 else "version {} is not one this edge-app reads (1)".format(value)


def _labels_file(value: Any) -> str:
    # A file of the dataset: a relative name that stays inside it.
    if not isinstance(value, str) or not value.strip():
        return "expected a file name, e.g. {}, got {}".format(LABELS_FILE, _shown(value))
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if PurePosixPath(value).is_absolute() or ".." in parts:
        return "'{}' must name a file inside the dataset, e.g. {}".format(value, LABELS_FILE)
    return ""


def _mapping(value: Any) -> str:
    return "" if isinstance(value, dict) else "expected a mapping, got {}".format(_shown(value))


def _rotate(value: Any) -> str:
    # The clockwise turn that makes every stored image upright (a property of the camera).
    from edge_app.rotation import ACCEPTED, ROTATIONS

    if isinstance(value, bool) or not isinstance(value, int) or value not in ROTATIONS:
        return "{} is not a quarter turn; use {}".format(_shown(value), ACCEPTED)
    return ""


def _flag(value: Any) -> str:
    return "" if isinstance(value, bool) else "expected true or false, got {}".format(_shown(value))


# Every key of dataset.yaml and what it must hold ("" = fine, else the problem).
CHECKS: Dict[str, Callable[[Any], str]] = {
    "format": _text, "version": _version, "task": lambda v: "" if v is None else _text(v), "kind": _one_of(tuple(TASK_KINDS)),
    "classes": _names, "points": _names, "coords": _one_of(COORDS), "labels_file": _labels_file,
    "source": _mapping, "crops": _flag, "rotate": _rotate,
}


def set_rotation(root: Path, rotation: int) -> int:
    """Declare in ``root``'s ``dataset.yaml`` that its images need turning clockwise by
    ``rotation`` to be upright (0 removes the key). Labels placed before stay on their spot
    of the picture: keypoints in the labels file and rows of ``subjects.jsonl`` are turned by
    the change, since readers take them in the coordinates of the picture as read. Labels are
    written first, ``dataset.yaml`` last. Returns how many rows were turned."""
    from edge_app.rotation import parse_rotation

    root = Path(root)
    rotation = parse_rotation(rotation, str(root / META_FILE), DatasetError)
    meta = read_meta(root)
    delta = (rotation - int(meta.get("rotate", 0))) % 360
    turned = 0
    if delta:
        turned += _turn_points(root, meta, delta)
        turned += _turn_subjects(root, delta)
    if rotation:
        meta["rotate"] = rotation
    else:
        meta.pop("rotate", None)
    write_meta(root, meta)
    return turned


def _turn_points(root: Path, meta: Dict[str, Any], delta: int) -> int:
    """Turn the keypoints of the labels file by ``delta`` (normalised or pixel coordinates)."""
    import csv
    import io

    from edge_app.rotation import rotate_normalized, rotate_pixels

    path = root / str(meta.get("labels_file") or LABELS_FILE)
    if "points" not in meta or not path.is_file():
        return 0
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    if not rows:
        return 0
    header, turned = rows[0], 0
    pairs = [(i, header.index(n[:-2] + "_y")) for i, n in enumerate(header)
             if n.endswith("_x") and n[:-2] + "_y" in header]
    pixels = meta.get("coords") == "pixels"
    for row in rows[1:]:
        if not row or not row[0]:
            continue
        size = _size_as_read(root, row[0], int(meta.get("rotate", 0))) if pixels else None
        for ix, iy in pairs:
            if ix >= len(row) or iy >= len(row) or not row[ix].strip() or not row[iy].strip():
                continue   # a point not placed stays so
            xy = [float(row[ix]), float(row[iy])]
            x, y = (rotate_pixels([xy], size, delta) if size else rotate_normalized([xy], delta))[0]
            row[ix], row[iy] = "{:.6g}".format(x), "{:.6g}".format(y)
        turned += 1
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    atomic_write_text(path, out.getvalue())
    return turned


def _size_as_read(root: Path, image: str, rotate: int) -> Sequence[int]:
    """(width, height) of a dataset image as readers see it, turned by the old ``rotate``."""
    from edge_app.dataset.verify import read_image

    pixels, problem = read_image(root / image, rotate=rotate)
    if pixels is None:
        raise DatasetError("{}: {}; its pixel keypoints cannot be turned".format(root / image, problem))
    return (int(pixels.shape[1]), int(pixels.shape[0]))


def _turn_subjects(root: Path, delta: int) -> int:
    """Turn the boxes and landmarks of ``subjects.jsonl`` (0..1 of the picture) by ``delta``."""
    import json

    from edge_app.dataset.model import SUBJECTS_FILE
    from edge_app.rotation import turn_subject

    path = root / SUBJECTS_FILE
    if not path.is_file():
        return 0
    lines, turned = [], 0
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue   # a torn line after a crash: its image is searched again anyway
        if isinstance(row, dict) and isinstance(row.get("box"), list):
            row = turn_subject(row, delta)
            turned += 1
        lines.append(json.dumps(row))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return turned
