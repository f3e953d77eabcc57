"""``--input texture``: the landmark MLP on landmark features followed by the aligned crop's HOG."""
from __future__ import annotations

from typing import Optional

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import SubjectScan
from edge_app.model.inputs import InputPlan
from edge_app.tasks.spec import TaskSpec
from edge_app.train.candidate import View
from edge_app.train.inputs.landmarks import LandmarksTraining
from edge_app.train.landmark_mlp import texture_data


class TextureTraining(LandmarksTraining):
    """The landmark MLP on landmark features followed by the aligned crop's HOG."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        scan = scan or self.scan(ds, plan, progress)
        view = super().view(ds, plan, scan, task, progress)
        assert scan is not None and view.features is not None
        # a model being trained (no features recorded yet) also gets the texture's other looks
        features, looks = texture_data(view.samples, view.features, scan, ds, progress,
                                       looks=not plan.features)
        return View(view.samples, view.targets, view.sizes, features, view.missed, view.schema, looks)


TEXTURE = TextureTraining()
