"""``--input crop``: the CNN on the subject's crops (points moved into crop coordinates)."""
from __future__ import annotations

from typing import Optional

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import SubjectScan
from edge_app.model.inputs import InputPlan
from edge_app.tasks.spec import TaskSpec
from edge_app.train.candidate import View
from edge_app.train.inputs.frame import FrameTraining
from edge_app.train.subjects import crop_dataset
from edge_app.train.torch_data import sizes_of


class CropTraining(FrameTraining):
    """The CNN on the subject's crops (points moved into crop coordinates)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        crops, missed = crop_dataset(ds, plan, scan)
        return View(list(crops.samples), task.task_kind.training().targets(crops),
                    sizes_of(crops.samples), None, missed)


CROP = CropTraining()
