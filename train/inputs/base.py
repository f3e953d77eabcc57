"""The training side of the input kinds (edge_app.model.inputs): for each kind, the dataset as its
model sees it (a :class:`View`), how a :class:`Candidate` is trained, how a model is rebuilt
from its bundle, and its raw outputs on a view. ``edge-app train``, ``eval`` and ``export``
reach them through ``InputKind.training()`` and never compare kind names."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import SubjectScan, scan_subjects
from edge_app.model.bundle import Bundle
from edge_app.model.inputs import InputPlan
from edge_app.subject.landmarks import choose_schema
from edge_app.tasks.spec import TaskSpec
from edge_app.train.candidate import Candidate, TrainJob, View


class TrainingInput:
    """The training side of one input kind."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        """``ds`` as this kind's model sees it."""
        raise NotImplementedError

    def train(self, job: TrainJob) -> Candidate:
        """Train a model of this kind (raises DatasetError when the data cannot feed it)."""
        raise NotImplementedError

    def build(self, bundle: Bundle) -> Any:
        """An untrained model shaped like the bundle's, to load its weights into."""
        raise NotImplementedError

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        """Raw outputs (logits, or points in the view's coordinates) on a view."""
        raise NotImplementedError

    def scan(self, ds: Dataset, plan: InputPlan, progress: bool) -> Optional[SubjectScan]:
        """The subjects of ``ds`` where this kind needs them."""
        if not plan.kind.subject:
            return None
        return scan_subjects(ds, plan.subject or "hand", plan.provider, plan.crops, progress)


def feature_schema(plan: InputPlan, scan: SubjectScan) -> str:
    """A trained model's landmark schema, or for training the richest most subjects have."""
    if plan.features:   # a trained model: its own schema, whatever the data offers
        return str(plan.feature_schema)
    return choose_schema(str(plan.subject), scan.subjects)
