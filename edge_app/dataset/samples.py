"""In-memory view of a dataset on disk, whatever layout it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.verify import image_sizes
from edge_app.names import printable

META_FILE = "dataset.yaml"
LABELS_FILE = "labels.csv"
SPLITS_FILE = "splits.csv"
SUBJECTS_FILE = "subjects.jsonl"
NATIVE_FORMAT = "edge-app"


@dataclass
class Sample:
    """One labelled image. ``points`` is (P, 2) in the dataset's ``coords`` units, NaN where a
    point is missing; ``label`` is the class name."""

    path: Path
    label: Optional[str] = None
    points: Optional[np.ndarray] = None
    split: Optional[str] = None
    size: Optional[Tuple[int, int]] = None   # (width, height) once verified
    crop: Optional[Tuple[float, float, float]] = None   # x0, y0, side: the subject's square

    def normalized_points(self, coords: str) -> np.ndarray:
        """Points in 0..1 of the image width and height (needs ``size`` for pixel datasets)."""
        assert self.points is not None
        if coords == "normalized":
            return self.points
        if self.size is None:
            raise ValueError("image size unknown: verify the dataset first")
        return self.points / np.array(self.size, dtype=np.float64)


def bad_name_problem(path: Path) -> Problem:
    """The problem reported for a file or folder whose name is not UTF-8 (it is skipped)."""
    return Problem(printable(path), "name is not valid UTF-8 text; skipped (rename it, e.g. "
                   "with convmv or by hand, to use it)")


@dataclass
class Problem:
    """Something wrong with a file, reported and skipped (never fatal, never counted)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Dataset:
    """Samples plus what is known about them. ``labels`` are class names (classification) or
    point names (keypoints), in the dataset's own order."""

    root: Path
    format: str
    kind: str
    labels: Tuple[str, ...]
    samples: List[Sample] = field(default_factory=list)
    coords: str = "normalized"
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    task: Optional[str] = None
    verified: bool = False

    def counts(self) -> Dict[str, int]:
        """Images per class, or labelled images per point."""
        if self.kind == "keypoints":
            return {name: int(sum(1 for s in self.samples if s.points is not None
                                  and not np.isnan(s.points[i]).any()))
                    for i, name in enumerate(self.labels)}
        counts = {name: 0 for name in self.labels}
        for s in self.samples:
            if s.label is not None:
                counts[s.label] = counts.get(s.label, 0) + 1
        return counts

    def verify(self, progress: bool = False) -> Dataset:
        """Decode every image once: record sizes, move unreadable files to ``problems``."""
        if self.verified:
            return self
        kept = []
        for sample, (size, problem) in zip(self.samples, image_sizes([s.path for s in self.samples], progress)):
            if size is None:
                self.problems.append(Problem(str(sample.path), problem))
            else:
                sample.size = size
                kept.append(sample)
        self.samples = kept
        self.verified = True
        return self
