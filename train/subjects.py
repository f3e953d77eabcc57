"""The subject stage in training and eval: decide between crops and whole frames, and turn a
dataset into crops of its subjects (points moved into crop coordinates)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_app.dataset.model import Dataset, Sample
from edge_app.errors import UserError
from edge_app.subject.crop import PAD, crop_box, to_crop
from edge_app.subject.dataset import (
    LOW_RATE,
    SubjectScan,
    low_rate_hint,
    rates_by_label,
    scan_subjects,
)
from edge_app.task_spec import TaskSpec


@dataclass
class InputPlan:
    """What the model sees; saved in the bundle and followed by every later stage."""

    input: str                       # "crop" | "landmarks" | "both" | "frame"
    subject: Optional[str] = None    # "hand" | "face"
    pad: float = PAD
    provider: str = "auto"
    crops: bool = False              # the training images were declared crops
    detection_rate: Optional[float] = None
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def plan_input(ds: Dataset, task: TaskSpec, cfg: Any, progress: bool) -> Tuple[InputPlan, Optional[SubjectScan]]:
    """Choose crops or whole frames for training (``cfg.input``: auto, crop or frame)."""
    if task.subject == "none" or cfg.input == "frame":
        why = "the task has no subject" if task.subject == "none" else "--input frame"
        return InputPlan("frame", reason=why), None
    crops = bool(cfg.crops or declared_crops(ds.root))
    try:
        scan = scan_subjects(ds, task.subject, cfg.subject_provider, crops, progress)
    except UserError as exc:
        if cfg.input in ("crop", "landmarks", "both"):
            raise
        return InputPlan("frame", reason="no subject detector ({})".format(exc)), None
    chosen = cfg.input if cfg.input in ("landmarks", "both") else "crop"
    plan = InputPlan(chosen, task.subject, PAD, cfg.subject_provider, crops, round(scan.rate, 4))
    if scan.rate < LOW_RATE:
        hint = low_rate_hint(task.subject, scan.rate)
        if cfg.input == "auto":
            return InputPlan("frame", detection_rate=plan.detection_rate,
                             reason=hint + "; training on whole frames"), scan
        print("warning: " + hint)
    plan.reason = "{} found in {:.0%} of the images".format(task.subject, scan.rate)
    return plan, scan


def report(ds: Dataset, scan: SubjectScan, kind: str) -> None:
    """Detection rate per class, printed."""
    per = rates_by_label(ds, scan)
    text = ", ".join("{} {}/{}".format(k, f, t) for k, (f, t) in per.items())
    print("subject: {} found in {:.0%} of {} images ({}; {} stored, {} cached, {} detected)".format(
        kind, scan.rate, len(scan.subjects), text, scan.stored, scan.cached, scan.detected))


def apply_plan(ds: Dataset, plan: InputPlan, scan: Optional[SubjectScan] = None,
               progress: bool = False) -> Tuple[Dataset, List[Sample]]:
    """The dataset as the model sees it: crops of the subjects (points in crop coordinates),
    and the samples where no subject was found (left out; counted as misses by eval)."""
    if plan.input != "crop":
        return ds, []
    if scan is None:
        scan = scan_subjects(ds, plan.subject or "hand", plan.provider, plan.crops, progress)
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


def plan_from_meta(meta: Dict[str, Any]) -> InputPlan:
    """The plan a bundle was trained with (bundles from before the subject stage: frames)."""
    d = meta.get("input_plan") or {"input": "frame"}
    fields = {f.name for f in dataclasses.fields(InputPlan)}
    return InputPlan(**{k: v for k, v in d.items() if k in fields})


def declared_crops(root: Path) -> bool:
    """``crops: true`` in a dataset's dataset.yaml."""
    from edge_app.dataset.model import META_FILE

    path = Path(root) / META_FILE
    if not path.is_file():
        return False
    import yaml

    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False
    return bool(isinstance(meta, dict) and meta.get("crops"))
