"""What every input kind's trainer shares: the dataset as a model sees it (:class:`View`), the
job it is given (:class:`TrainJob`), the trained :class:`Candidate` it returns, and the split."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_app.dataset.samples import Dataset, Sample
from edge_app.dataset.subjects import SubjectScan
from edge_app.model.inputs import InputPlan
from edge_app.tasks.spec import TaskSpec
from edge_app.tasks.train_config import TrainConfig
from edge_app.train.labelled import load_labelled
from edge_app.train.split import split_indices

log = logging.getLogger(__name__)


@dataclass
class View:
    """A dataset as one kind of model sees it: its samples (crops for crop models), targets
    (points in the model's own coordinates), the scale that turns errors into pixels, the
    landmark features where the model takes them, and the samples it cannot see (misses)."""

    samples: List[Sample]
    targets: np.ndarray
    sizes: np.ndarray
    features: Optional[np.ndarray] = None
    missed: List[Sample] = field(default_factory=list)
    schema: str = ""              # the landmark schema of ``features`` (landmarks.SCHEMA_POINTS)
    # (N, K, T): K other looks of the features' last T columns (the texture of the crop as
    # other cameras would show it), for training views; None where the kind has none
    looks: Optional[np.ndarray] = None

    def pick(self, idx: Sequence[int]) -> View:
        rows = list(idx)
        return View([self.samples[i] for i in rows], self.targets[rows], self.sizes[rows],
                    None if self.features is None else self.features[rows], [], self.schema,
                    None if self.looks is None else self.looks[rows])


@dataclass
class TrainJob:
    """What every trainer gets: the data, its subjects, the plan, and the run's settings."""

    ds: Dataset
    scan: Optional[SubjectScan]
    plan: InputPlan
    task: TaskSpec
    cfg: TrainConfig
    device: Any
    out: Path                     # the bundle folder (full mode keeps its checkpoint there)
    data: Path
    fmt: str = "auto"
    val_dir: Optional[Path] = None
    resume: bool = False
    progress: bool = True
    cache_dir: Optional[Path] = None
    quiet: bool = False           # another candidate already reported the same data


@dataclass
class Candidate:
    """A trained model of one input kind, before it is written as a bundle."""

    plan: InputPlan               # the input plan, with features / embed / layout filled in
    model: Any
    arch: str
    weights: str
    input_size: Tuple[int, int]
    metrics: Dict[str, Any]
    history: List[Dict[str, Any]]
    best_epoch: Optional[int]
    train_count: int
    val: View
    found_rate: float             # share of the images this kind could use
    timings: Dict[str, Any]
    grid_outputs: Optional[np.ndarray] = None   # validation outputs for the image grid

    def __post_init__(self) -> None:
        # twelve fields of near-equal types: a positional mix-up would go unnoticed, so every
        # construction names them (Python 3.8 has no dataclass(kw_only=True))
        if not isinstance(self.plan, InputPlan) or not isinstance(self.val, View):
            raise TypeError("build a Candidate by keyword: Candidate(plan=..., model=..., ...)")

    @property
    def seconds(self) -> float:
        return float(self.timings.get("train_seconds", 0.0))


def input_size(cfg: TrainConfig, task: TaskSpec) -> Tuple[int, int]:
    h, w = cfg.input_size or task.input_size
    return int(h), int(w)


def split(view: View, job: TrainJob, trainer: Any) -> Tuple[View, View]:
    """(train, validation): ``--val DIR`` seen the same way, else a stratified split
    (classes by label; points by which of them are labelled)."""
    if job.val_dir is not None:
        val_ds = load_labelled(job.val_dir, job.task, job.fmt, "eval", job.progress)
        val = trainer.view(val_ds, job.plan, None, job.task, job.progress)
        if val.missed:
            log.info("validation: no %s found in %d image(s); left out", job.plan.subject, len(val.missed))
        return view, val
    kind = job.task.task_kind.training()
    tr, va = split_indices(view.samples, kind.strata(view.targets), job.cfg.val_fraction,
                           job.cfg.seed, job.cfg.group)
    return view.pick(tr), view.pick(va)
