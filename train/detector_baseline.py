"""What the subject stage alone says, with no training: for a point task whose points the
detector also gives (a face's eyes, nose and mouth corners from Face Mesh; a hand's joints),
its raw points scored like the model on the same images, so that ``edge-app eval`` shows
whether training helped."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.samples import Dataset
from edge_app.dataset.subjects import scan_subjects
from edge_app.errors import UserError
from edge_app.model.inputs import InputPlan
from edge_app.sim.hand import LANDMARK_NAMES
from edge_app.subject.landmarks import FACE_NAMES, canonical_points
from edge_app.tasks.spec import TaskSpec

NAMES = {"face": "MediaPipe Face Mesh", "hand": "MediaPipe Hands"}


def point_names(kind: str) -> Tuple[str, ...]:
    """The detector's named points for a subject kind, in its canonical order."""
    if kind == "face":
        return FACE_NAMES

    return tuple(LANDMARK_NAMES)


def detector_baseline(ds: Dataset, samples: List[Any], task: TaskSpec, plan: InputPlan,
                      norm: Optional[np.ndarray], progress: bool = False) -> Optional[Dict[str, Any]]:
    """Metrics of the detector's own points on ``samples`` (the model's scored images, by
    path), or None when no task point is one of the detector's or no detector runs."""
    kind = str(task.subject)
    if kind not in NAMES or not samples:
        return None
    names = point_names(kind)
    index = [names.index(p) if p in names else -1 for p in task.points]
    if max(index) < 0:
        return None
    try:
        scan = scan_subjects(ds, kind, plan.provider, plan.crops, progress)
    except UserError:
        return None
    by_path = {str(s.path): (s, sub) for s, sub in zip(ds.samples, scan.subjects)}
    preds, targets, sizes, found, sources = [], [], [], 0, set()
    for view_sample in samples:
        original, subject = by_path[str(view_sample.path)]
        w, h = original.size or (1, 1)
        target = original.normalized_points(ds.coords).astype(np.float64)
        pred = np.full_like(target, np.nan)
        points = None if subject is None else canonical_points(subject)
        if points is not None and subject is not None:
            found += 1
            sources.add(subject.source)
            for j, i in enumerate(index):
                if i >= 0:
                    pred[j] = points[i] / (w, h)
        target[[i < 0 for i in index]] = np.nan   # points the detector does not give
        preds.append(pred)
        targets.append(target)
        sizes.append((w, h))
    metrics = task.task_kind.training().metrics(np.array(preds), np.array(targets), task,
                                                np.array(sizes, np.float64), norm)
    name = NAMES[kind] if sources <= {"mediapipe"} else "the subject stage ({})".format(
        ", ".join(sorted(sources)))
    return dict(metrics, name=name, detection_rate=found / len(samples),
                points=[p for p, i in zip(task.points, index) if i >= 0])
