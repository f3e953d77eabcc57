"""The subject stage in training and eval: decide between crops and whole frames, and turn a
dataset into crops of its subjects (points moved into crop coordinates)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from edge_app.camera.check import RotationVote
from edge_app.dataset.samples import META_FILE, Dataset, Sample
from edge_app.dataset.subjects import (
    LOW_RATE,
    SubjectScan,
    low_rate_hint,
    rates_by_label,
    scan_subjects,
)
from edge_app.dataset.verify import declared_rotation
from edge_app.errors import DatasetError, UserError
from edge_app.model.inputs import CROP, FRAME, InputPlan, input_kind
from edge_app.subject.crop import PAD, crop_box, to_crop
from edge_app.tasks.safe_yaml import load_yaml
from edge_app.tasks.spec import TaskSpec
from edge_app.tasks.train_config import AUTO_INPUTS

log = logging.getLogger(__name__)


def plan_input(ds: Dataset, task: TaskSpec, cfg: Any, progress: bool) -> Tuple[InputPlan, Optional[SubjectScan]]:
    """What to train on (``cfg.input``: auto or a registered input kind): whole frames when
    the task has no subject, the kind asks for none, or (auto) too few subjects are found."""
    asked = None if cfg.input in AUTO_INPUTS else input_kind(cfg.input, "--input")
    if task.subject == "none" or (asked is not None and not asked.subject):
        why = "the task has no subject" if task.subject == "none" else "--input " + cfg.input
        return InputPlan(FRAME.name, reason=why), None
    crops = bool(cfg.crops or declared_crops(ds.root))
    try:
        scan = scan_subjects(ds, task.subject, cfg.subject_provider, crops, progress)
    except UserError as exc:
        if asked is not None:
            raise
        return InputPlan(FRAME.name, reason=f"no subject detector ({exc})"), None
    # auto: the subject kinds are all candidates; the plan names the one that resumes
    chosen = asked or CROP
    plan = InputPlan(chosen.name, task.subject, PAD, cfg.subject_provider, crops, round(scan.rate, 4))
    if scan.rate < LOW_RATE:
        hint = low_rate_hint(task.subject, scan.rate)
        if asked is None:
            return InputPlan(FRAME.name, detection_rate=plan.detection_rate,
                             reason=hint + "; training on whole frames"), scan
        log.warning(hint)
    plan.reason = f"{task.subject} found in {scan.rate:.0%} of the images"
    return plan, scan


def report(ds: Dataset, scan: SubjectScan, kind: str) -> None:
    """Detection rate per class, printed; a warning when the pictures look turned."""
    per = rates_by_label(ds, scan)
    text = ", ".join(f"{k} {f}/{t}" for k, (f, t) in per.items())
    log.info("subject: %s found in %.0f%% of %d images (%s; %d stored, %d cached, %d detected)",
             kind, 100 * scan.rate, len(scan.subjects), text, scan.stored, scan.cached, scan.detected)
    hint = rotation_hint(ds, scan)
    if hint:
        log.warning(hint)


ROTATION_VOTES = 20   # upright evidence a whole dataset must give before it is called turned


def rotation_hint(ds: Dataset, scan: SubjectScan) -> str:
    """One line when the subjects found say the pictures are turned and the dataset declares
    no ``rotate:``, else "". The turn is only reported, never applied: rotation belongs to
    the camera, and the person who knows it declares it (a turned thumbs-up is a thumbs-down)."""
    if not ds.samples or declared_rotation(ds.samples[0].path):
        return ""
    vote = RotationVote(min_frames=ROTATION_VOTES)
    for subject in scan.subjects:
        vote.add(subject)
    est = vote.result()
    if not est.known or not est.rotation:
        return ""
    return ("the pictures look turned ({}): if the camera was, declare `rotate: {}` in {} "
            "(edge-app doctor --source checks a camera)".format(
                est.evidence(), est.rotation, Path(ds.root) / "dataset.yaml"))


def crop_dataset(ds: Dataset, plan: InputPlan, scan: SubjectScan) -> Tuple[Dataset, List[Sample]]:
    """Crops of the subjects (points in crop coordinates), and the samples where no subject
    was found (left out; counted as misses by eval)."""
    kept: List[Sample] = []
    missed: List[Sample] = []
    keypoints = ds.kind == "keypoints"
    for s, subject in zip(ds.samples, scan.subjects):
        if subject is None:
            missed.append(s)
            continue
        cb = crop_box(subject.box, plan.pad)
        points = None
        if keypoints and s.points is not None:
            points = to_crop(s.normalized_points(ds.coords), cb, s.size or (1, 1)).astype(np.float32)
        # The crop's side stays fractional: pixel errors of points are measured at its scale.
        side: Any = cb.side
        kept.append(dataclasses.replace(s, crop=(cb.x0, cb.y0, cb.side), points=points,
                                        size=(side, side)))
    return dataclasses.replace(ds, samples=kept, coords="normalized"), missed


def declared_crops(root: Path) -> bool:
    """``crops: true`` in a dataset's dataset.yaml (read with the safe loader)."""
    path = Path(root) / META_FILE
    if not path.is_file():
        return False
    try:
        meta = load_yaml(path, DatasetError) or {}
    except DatasetError:
        return False
    return bool(isinstance(meta, dict) and meta.get("crops"))
