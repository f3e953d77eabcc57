"""The training side of the input kinds (edge_app.inputs): for each kind, the dataset as its
model sees it (a :class:`View`), how a :class:`Candidate` is trained, how a model is rebuilt
from its bundle, and its raw outputs on a view. ``edge-app train``, ``eval`` and ``export``
reach them through ``InputKind.training()`` and never compare kind names."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from edge_app.bundle import Bundle
from edge_app.dataset.model import Dataset
from edge_app.dataset.subjects import SubjectScan, scan_subjects
from edge_app.inputs import InputPlan
from edge_app.task_spec import TaskSpec
from train.candidate import Candidate, TrainJob, View


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


class FrameTraining(TrainingInput):
    """The CNN on whole frames."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        from train.data import sizes_of

        return View(list(ds.samples), task.task_kind.training().targets(ds), sizes_of(ds.samples))

    def train(self, job: TrainJob) -> Candidate:
        from train.cnn import train_cnn

        return train_cnn(job, self)

    def build(self, bundle: Bundle) -> Any:
        from train.model import build_model

        return build_model(bundle.task, bundle.arch, "none")

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        from train.engine import predict

        if not view.samples:
            return np.zeros((0, 0), np.float32)
        return predict(model, view.samples, size, device, progress=progress)


class CropTraining(FrameTraining):
    """The CNN on the subject's crops (points moved into crop coordinates)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        from train.data import sizes_of
        from train.subjects import crop_dataset

        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        crops, missed = crop_dataset(ds, plan, scan)
        return View(list(crops.samples), task.task_kind.training().targets(crops),
                    sizes_of(crops.samples), None, missed)


class LandmarksTraining(TrainingInput):
    """A small model on the subject's landmark features (the MLP, or a hand head the task
    declares: train.hand_heads)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        from train.landmarks import landmark_data

        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        kind = task.task_kind.training()
        schema = _schema(plan, scan)
        data, missed = landmark_data(ds, scan.subjects, kind.targets(ds), kind, schema)
        return View(data.samples, data.y, data.sizes, data.x, missed, schema)

    def train(self, job: TrainJob) -> Candidate:
        from train.landmark_run import train_landmarks

        return train_landmarks(job, self)

    def build(self, bundle: Bundle) -> Any:
        from train.landmarks import make_model

        return make_model(bundle.task, str(bundle.plan.feature_schema), bundle.plan.features, bundle.arch)

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        from train.landmarks import predict

        assert view.features is not None
        return predict(model.cpu(), view.features)


class TextureTraining(LandmarksTraining):
    """The landmark MLP on landmark features followed by the aligned crop's HOG."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        from train.landmarks import texture_data

        scan = scan or self.scan(ds, plan, progress)
        view = super().view(ds, plan, scan, task, progress)
        assert scan is not None and view.features is not None
        # a model being trained (no features recorded yet) also gets the texture's other looks
        features, looks = texture_data(view.samples, view.features, scan, ds, progress,
                                       looks=not plan.features)
        return View(view.samples, view.targets, view.sizes, features, view.missed, view.schema, looks)


class BothTraining(TrainingInput):
    """Crop CNN features and landmark features into one head (train.fused)."""

    def view(self, ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan], task: TaskSpec,
             progress: bool = False) -> View:
        from train.data import sizes_of
        from train.fused import fused_data

        scan = scan or self.scan(ds, plan, progress)
        assert scan is not None
        schema = _schema(plan, scan)
        fd = fused_data(ds, scan.subjects, plan, schema)
        return View(list(fd.ds.samples), task.task_kind.training().targets(fd.ds),
                    sizes_of(fd.ds.samples), fd.features, fd.missed, schema)

    def train(self, job: TrainJob) -> Candidate:
        from train.fused import train_fused

        return train_fused(job, self)

    def build(self, bundle: Bundle) -> Any:
        from train.fused import build_fused

        return build_fused(bundle.task, bundle.arch, "none", bundle.plan.embed, bundle.plan.features)

    def predict(self, model: Any, view: View, size: Tuple[int, int], device: Any,
                progress: bool = False) -> np.ndarray:
        from train.fused import predict_fused

        assert view.features is not None
        return predict_fused(model, view.samples, view.features, size, device)


def _schema(plan: InputPlan, scan: SubjectScan) -> str:
    """A trained model's landmark schema, or for training the richest most subjects have."""
    from edge_app.subject.landmarks import choose_schema

    if plan.features:   # a trained model: its own schema, whatever the data offers
        return str(plan.feature_schema)
    return choose_schema(str(plan.subject), scan.subjects)


FRAME = FrameTraining()
CROP = CropTraining()
LANDMARKS = LandmarksTraining()
TEXTURE = TextureTraining()
BOTH = BothTraining()
