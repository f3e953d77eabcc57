"""The registry of task kinds. Everything that differs between classification and keypoints
lives here, so no other module branches on a task's name or kind."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

CLASS_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
POINT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class TaskKind:
    """What a kind of task needs: the spec key holding its label names and how to check them."""

    name: str
    labels_key: str           # "classes" or "points"
    min_labels: int
    name_pattern: "re.Pattern[str]"
    name_rule: str            # human description of name_pattern, for error messages
    dataset_layout: str       # how the dataset stores labels: "folders" or "csv"
    trainer: str = ""         # "module:attribute" of its training behaviour (needs torch)
    output_name: str = ""     # the model's output: "scores", "points" or "detections"

    def training(self) -> Any:
        """The kind's loss, metrics, head and augmentation (imported on first use)."""
        import importlib

        if not self.trainer:
            from edge_app.errors import UserError

            raise UserError("{} models are not trained by edge-app: train the detector "
                            "elsewhere (jetson-inference's train_ssd.py, Ultralytics), export it "
                            "to ONNX and run it with edge-app run --model M.onnx --labels L.txt"
                            .format(self.name))
        module, _, attr = self.trainer.partition(":")
        return getattr(importlib.import_module(module), attr)

    def output_size(self, labels: Sequence[str]) -> int:
        """Width of the model's output for these labels (one score per class, x and y per point)."""
        return len(labels) * (2 if self.labels_key == "points" else 1)

    def check_labels(self, values: Any) -> Tuple[Tuple[str, ...], str]:
        """Validate the label list; return ``(names, "")`` or ``((), problem)``."""
        if not isinstance(values, (list, tuple)):
            return (), "must be a list, e.g. [a, b]"
        names = tuple(str(v) for v in values)
        if len(names) < self.min_labels:
            return (), "needs at least {} entries, got {}".format(self.min_labels, len(names))
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            return (), "duplicate entries: {}".format(", ".join(dupes))
        bad = [n for n in names if not self.name_pattern.match(n)]
        if bad:
            return (), "invalid name {!r}: {}".format(bad[0], self.name_rule)
        return names, ""


TASK_KINDS: Dict[str, TaskKind] = {}


def register_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind to the registry (later issues add e.g. landmark or detection kinds)."""
    TASK_KINDS[kind.name] = kind
    return kind


register_kind(TaskKind(
    name="classification", labels_key="classes", min_labels=2, name_pattern=CLASS_NAME_RE,
    name_rule="letters, digits, '_', '.', '+', '-' only (it becomes a folder name)",
    dataset_layout="folders", trainer="train.kinds:CLASSIFICATION", output_name="scores"))
register_kind(TaskKind(
    name="keypoints", labels_key="points", min_labels=1, name_pattern=POINT_NAME_RE,
    name_rule="lower-case letters, digits and '_' (it becomes a CSV column prefix)",
    dataset_layout="csv", trainer="train.kinds:KEYPOINTS", output_name="points"))

# Detectors come from elsewhere (jetson-inference, Ultralytics) with their own class names
# ("traffic light"), so any non-empty name up to 64 characters goes.
register_kind(TaskKind(
    name="detection", labels_key="classes", min_labels=1, name_pattern=re.compile(r"^\S.{0,63}$"),
    name_rule="a non-empty name up to 64 characters", dataset_layout="none",
    output_name="detections"))


def mirror_name(name: str) -> str:
    """The point name on the other side of the body (left_eye <-> right_eye), else unchanged."""
    for a, b in (("left", "right"), ("right", "left")):
        for pattern in ("{}_", "_{}"):
            old, new = pattern.format(a), pattern.format(b)
            if name.startswith(old) and pattern.startswith("{"):
                return new + name[len(old):]
            if name.endswith(old) and pattern.endswith("}"):
                return name[: -len(old)] + new
    return name


def flip_pairs(points: Sequence[str]) -> List[Tuple[int, int]]:
    """Index pairs of points that swap under a horizontal flip (left_x <-> right_x)."""
    pairs = []
    for i, name in enumerate(points):
        other = mirror_name(name)
        if other != name and other in points and i < points.index(other):
            pairs.append((i, points.index(other)))
    return pairs

