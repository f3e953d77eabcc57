"""``edge-app data import``: copy a dataset in any supported layout into this project's own."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.atomic import atomic_write_text
from edge_app.dataset.formats import ReadOptions, read_dataset
from edge_app.dataset.match import match_task
from edge_app.dataset.meta import read_meta, write_meta
from edge_app.dataset.samples import SPLITS_FILE, Dataset
from edge_app.dataset.writer import DatasetWriter
from edge_app.errors import DatasetError
from edge_app.tasks.kinds import TASK_KINDS
from edge_app.tasks.spec import TaskSpec, parse_task


def _safe(name: str, lower: bool = False) -> str:
    text = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("._") or "unnamed"
    return text.lower() if lower else text


def task_from_dataset(ds: Dataset, name: str) -> Tuple[TaskSpec, Dict[str, str]]:
    """A task spec for a dataset imported without ``--task`` (its own labels, made safe for
    folder and column names) and the renaming from old to new label names."""
    kind = TASK_KINDS[ds.kind]
    labels = [_safe(n, lower=kind.labels_key == "points") for n in ds.labels]
    if kind.labels_key == "points":
        labels = [re.sub(r"[^a-z0-9_]", "_", n) if n[:1].isalpha() else "p_" + n for n in labels]
    task = parse_task({"name": _safe(name), "kind": ds.kind, kind.labels_key: labels},
                      source=f"{ds.root} (imported)")
    return task, dict(zip(ds.labels, labels))


@dataclass
class ImportResult:
    """What an import wrote and what it skipped."""

    out: str
    format: str
    task: str
    images: int
    counts: Dict[str, int]
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def import_dataset(src: Path, out: Path, fmt: str = "auto", task: Optional[TaskSpec] = None,
                   opts: Optional[ReadOptions] = None, progress: bool = True) -> ImportResult:
    """Read ``src``, check every image, and write the readable ones to ``out``; the source is
    never modified. Returns counts and what was skipped."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: already exists and is not empty; import into a new folder")
    ds = read_dataset(src, fmt, opts).verify(progress=progress)
    if task is not None:
        ds = match_task(ds, task, purpose="import")
    else:
        task, rename = task_from_dataset(ds, Path(src).resolve().stem)
        renamed = [f"{a} -> {b}" for a, b in rename.items() if a != b]
        if renamed:
            ds.notes.append("renamed to safe names: " + ", ".join(renamed))
        for s in ds.samples:
            if s.label is not None:
                s.label = rename[s.label]
        ds.labels = task.labels
    writer = DatasetWriter(out, task)
    splits: List[List[str]] = []
    samples = ds.samples
    if progress and len(samples) > 200:
        from tqdm import tqdm

        samples = tqdm(samples, desc="importing", unit="img", leave=False)
    for s in samples:
        name = _safe("__".join(s.path.relative_to(ds.root).parts[-2:]
                               if s.label is None else s.path.relative_to(ds.root).parts[-1:]))
        points = None if s.points is None else s.normalized_points(ds.coords)
        path = writer.save(np.empty(0), label=s.label, points=points,
                           encoded=s.path.read_bytes(), name=name)
        if s.split:
            splits.append([path.relative_to(out).as_posix(), s.split])
    if splits:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([["image", "split"]] + splits)
        atomic_write_text(out / SPLITS_FILE, buf.getvalue())
    meta = read_meta(out)
    meta["source"] = {"path": str(Path(src).resolve()), "format": ds.format}
    write_meta(out, meta)
    return ImportResult(str(out), ds.format, task.name, len(ds.samples), dict(writer.counts),
                        [str(p) for p in ds.problems], list(ds.notes))
