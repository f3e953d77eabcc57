"""Pre-labelling: the subject's landmarks suggest a label (the finger count, the thumb's
direction) or the points (nose, eyes, hand joints). A suggestion is only shown; the user
accepts it with one key or corrects it. Nothing is saved by a suggestion itself."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from edge_app.sim.hand import LANDMARK_NAMES
from edge_app.subject.base import Subject, SubjectFinder
from edge_app.subject.landmarks import (
    FACE_NAMES,
    canonical_points,
    extended_fingers,
    thumb_direction,
)
from edge_app.subject.providers import find_subject

if TYPE_CHECKING:   # the task spec imports the subject providers' names
    from edge_app.tasks.spec import TaskSpec


@dataclass
class Suggestion:
    """What the landmarks say about one frame."""

    subject: Subject
    label: Optional[str] = None
    points: Dict[str, Tuple[float, float]] = field(default_factory=dict)   # 0..1 of the frame

    @property
    def text(self) -> str:
        if self.label is not None:
            return f"suggested: {self.label}"
        return f"suggested: {len(self.points)} point(s)" if self.points else ""


def _count_rule(task: TaskSpec) -> Optional[Callable[[Subject], Optional[str]]]:
    if task.subject != "hand" or not task.classes or not all(c.isdigit() for c in task.classes):
        return None
    by_count = {int(c): c for c in task.classes}

    def rule(subject: Subject) -> Optional[str]:
        n = extended_fingers(subject)
        return by_count.get(n) if n is not None else None
    return rule


def _thumb_rule(task: TaskSpec) -> Optional[Callable[[Subject], Optional[str]]]:
    if task.subject != "hand" or not task.classes:
        return None
    if task.thumb:   # declared in the spec (thumb: {class: up | down})
        up = [c for c, where in task.thumb if where == "up"]
        down = [c for c, where in task.thumb if where == "down"]
    else:            # guessed from the class names
        up = [c for c in task.classes if "up" in c.lower()]
        down = [c for c in task.classes if "down" in c.lower()]
    if len(up) != 1 or len(down) != 1:
        return None

    def rule(subject: Subject) -> Optional[str]:
        direction = thumb_direction(subject)
        return {"up": up[0], "down": down[0]}.get(direction or "")
    return rule


# Classification rules, tried in order; the first that applies to a task is used.
LABEL_RULES: List[Callable[[TaskSpec], Optional[Callable[[Subject], Optional[str]]]]] = [
    _count_rule, _thumb_rule]


def _point_names(kind: str) -> Tuple[str, ...]:
    if kind == "face":
        return FACE_NAMES

    return tuple(LANDMARK_NAMES)


class Suggester:
    """Finds the subject in preview frames (tracking) and turns its landmarks into a label or
    points for ``task``; ``available`` is False when no rule fits the task."""

    def __init__(self, task: TaskSpec, finder: SubjectFinder) -> None:
        self.task, self.finder = task, finder
        self.rule = next((r for r in (f(task) for f in LABEL_RULES) if r is not None), None)
        names = _point_names(task.subject) if task.subject != "none" else ()
        self.point_index = {p: names.index(p) for p in task.points if p in names}

    @property
    def available(self) -> bool:
        return self.rule is not None or bool(self.point_index)

    def suggest(self, image: np.ndarray, truth: Optional[Dict[str, Any]] = None) -> Optional[Suggestion]:
        subject = find_subject(self.finder, image, truth)
        if subject is None:
            return None
        out = Suggestion(subject)
        if self.rule is not None:
            out.label = self.rule(subject)
        points = canonical_points(subject)
        if points is not None and self.point_index:
            h, w = image.shape[:2]
            out.points = {name: (float(points[i][0] / w), float(points[i][1] / h))
                          for name, i in self.point_index.items()}
        return out

    def close(self) -> None:
        self.finder.close()
