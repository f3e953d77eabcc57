"""Edits of a dataset this project writes: its most recent samples, and removing one (a bad
capture) so that it can be undone: the image moves to ``.deleted/`` inside the dataset, which
every reader skips, and a keypoint sample's row leaves the labels file (rewritten atomically)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from edge_app.dataset.atomic import append_line, atomic_write_text
from edge_app.dataset.samples import LABELS_FILE, SUBJECTS_FILE
from edge_app.errors import DatasetError
from edge_app.tasks.spec import TaskSpec

TRASH = ".deleted"
FILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\.(jpg|jpeg|png)$", re.IGNORECASE)


def sample_path(root: Path, task: TaskSpec, folder: str, name: str) -> Path:
    """The file of sample ``folder/name``, checked: ``folder`` is one of the task's classes (or
    ``images`` for keypoints), ``name`` a plain image file name, and the file exists. Anything
    else (``..``, slashes, other folders) is refused, so a request cannot reach outside."""
    allowed = ("images",) if task.task_kind.dataset_layout == "csv" else task.classes
    if folder not in allowed or not FILE_RE.match(name):
        raise DatasetError(f"no sample {folder}/{name} in this dataset")
    path = Path(root) / folder / name
    if not path.is_file():
        raise DatasetError(f"no sample {folder}/{name} in this dataset")
    return path


def recent(root: Path, task: TaskSpec, limit: int = 12) -> List[Dict[str, Any]]:
    """The newest samples first: folder, file name and label (the class, or "points")."""
    root = Path(root)
    points = task.task_kind.dataset_layout == "csv"
    folders = ["images"] if points else list(task.classes)
    found = []
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for p in base.iterdir():
            if p.is_file() and FILE_RE.match(p.name):
                found.append((p.stat().st_mtime, folder, p.name))
    found.sort(reverse=True)
    return [{"folder": f, "name": n, "label": "points" if points else f} for _, f, n in found[:limit]]


def remove(root: Path, task: TaskSpec, folder: str, name: str, lock: Optional[Any] = None) -> Path:
    """Move sample ``folder/name`` to ``.deleted/`` (and drop its label row); where it went."""
    root = Path(root)
    path = sample_path(root, task, folder, name)
    target = root / TRASH / folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if lock is None:
        return _remove(root, task, path, target, folder)
    with lock:
        return _remove(root, task, path, target, folder)


def _remove(root: Path, task: TaskSpec, path: Path, target: Path, folder: str) -> Path:
    image = f"{folder}/{path.name}"
    if task.task_kind.dataset_layout == "csv":
        _drop_row(root / LABELS_FILE, image)
    path.replace(target)
    _drop_subject(root, image)   # else data info reports a row without its image
    return target


def _drop_subject(root: Path, image: str) -> None:
    """Move the ``subjects.jsonl`` row of ``image``, if it has one, to ``.deleted/`` beside
    the image (the file is rewritten atomically)."""
    subjects = root / SUBJECTS_FILE
    if not subjects.is_file():
        return
    lines = subjects.read_bytes().decode("utf-8", "replace").splitlines()
    kept = [line for line in lines if _row_image(line) != image]
    if len(kept) == len(lines):
        return
    for line in lines:
        if _row_image(line) == image:
            append_line(root / TRASH / SUBJECTS_FILE, line)
    atomic_write_text(subjects, "".join(line + "\n" for line in kept))


def _row_image(line: str) -> Optional[str]:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row.get("image") if isinstance(row, dict) else None


def _drop_row(labels: Path, image: str) -> None:
    rows = list(csv.reader(labels.read_text(encoding="utf-8").splitlines()))
    kept = [r for r in rows if not r or r[0] != image]
    if len(kept) == len(rows):
        return
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    atomic_write_text(labels, out.getvalue())
