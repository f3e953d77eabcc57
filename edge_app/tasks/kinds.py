"""The registry of task kinds. Everything that differs between classification and keypoints
lives here, so no other module branches on a task's name or kind."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from edge_app.errors import UserError
from edge_app.registry import Registry, resolve

if TYPE_CHECKING:   # annotations only: the device never imports the dataset or torch for these
    import numpy as np

    from edge_app.dataset.samples import Dataset
    from edge_app.tasks.spec import TaskSpec

CLASS_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
POINT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class TaskKind:
    """What a kind of task needs: the spec key holding its label names and how to check them."""

    name: str
    labels_key: str           # "classes" or "points"
    min_labels: int
    name_pattern: re.Pattern[str]
    name_rule: str            # human description of name_pattern, for error messages
    dataset_layout: str       # how the dataset stores labels: "folders" or "csv"
    trainer: str = ""         # "module:attribute" of its training behaviour (needs torch)
    output_name: str = ""     # the model's output: "scores", "points" or "detections"

    def training(self) -> TaskTraining:
        """The kind's loss, metrics, head and augmentation (imported on first use)."""
        if not self.trainer:
            raise UserError(f"{self.name} models are not trained by edge-app: train the detector "
                            "elsewhere (jetson-inference's train_ssd.py, Ultralytics), export it "
                            "to ONNX and run it with edge-app run --model M.onnx --labels L.txt"
                            )
        training: TaskTraining = resolve(self.trainer)  # type: ignore[assignment]
        return training

    def output_size(self, labels: Sequence[str]) -> int:
        """Width of the model's output for these labels (one score per class, x and y per point)."""
        return len(labels) * (2 if self.labels_key == "points" else 1)

    def check_labels(self, values: Any) -> Tuple[Tuple[str, ...], str]:
        """Validate the label list; return ``(names, "")`` or ``((), problem)``."""
        if not isinstance(values, (list, tuple)):
            return (), "must be a list, e.g. [a, b]"
        names = tuple(str(v) for v in values)
        if len(names) < self.min_labels:
            return (), f"needs at least {self.min_labels} entries, got {len(names)}"
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)   # linear, not names.count
        if dupes:
            return (), "duplicate entries: {}".format(", ".join(dupes))
        bad = [n for n in names if not self.name_pattern.match(n)]
        if bad:
            return (), f"invalid name {bad[0]!r}: {self.name_rule}"
        return names, ""


class TaskTraining(Protocol):
    """What a task kind does in training (``edge_app.train.task_kinds``): what
    :meth:`TaskKind.training` hands out. Torch types are ``Any`` here: the device side names
    them without importing torch."""

    pool_cells: int                 # the backbone's feature map pooled to this many cells
    views_keep_targets: bool        # augmented views keep the target (image/landmark pairing)
    headline: str                   # the metric a one-line summary reports
    normalised_by_face: bool        # NME over the found face's eye distance
    grid_title: str                 # the validation grid's title
    crop_augment: Any               # the crop jitter training uses
    fit_head: Callable[..., Any]    # fast mode's head fit on cached features

    def pool(self) -> Any: ...
    def head(self, in_features: int, task: TaskSpec) -> Any: ...
    def good_enough(self, metrics: Dict[str, Any], rate: float) -> bool: ...
    def targets(self, ds: Dataset) -> np.ndarray: ...
    def strata(self, targets: np.ndarray) -> List[int]: ...
    def fused_net(self, width: int, task: TaskSpec) -> Any: ...
    def fused_head_config(self, cfg: Any) -> Any: ...
    def train_transform(self, task: TaskSpec, size: Tuple[int, int]) -> Any: ...
    def batch_target(self, targets: Sequence[Any]) -> Any: ...
    def loss_fn(self, targets: np.ndarray, n_labels: int, label_smoothing: float,
                balance: bool) -> Any: ...
    def metrics(self, outputs: np.ndarray, targets: np.ndarray, task: TaskSpec,
                sizes: Optional[np.ndarray] = None,
                norm: Optional[np.ndarray] = None) -> Dict[str, Any]: ...
    def score(self, metrics: Dict[str, Any]) -> float: ...
    def tolerance(self, metrics: Dict[str, Any]) -> float: ...
    def count_misses(self, metrics: Dict[str, Any], missed: Sequence[Optional[str]],
                     task: TaskSpec) -> Dict[str, Any]: ...
    def describe(self, metrics: Dict[str, Any]) -> str: ...
    def agreement(self, ref: np.ndarray, got: np.ndarray,
                  sizes: np.ndarray) -> Tuple[Dict[str, float], bool]: ...
    def overall(self, metrics: Dict[str, Any], rate: float) -> float: ...
    def empty_outputs(self, task: TaskSpec) -> np.ndarray: ...
    def label_text(self, output: np.ndarray, task: TaskSpec) -> str: ...
    def to_local(self, target: Any, frame: Any, size: Any) -> Any: ...
    def flat(self, targets: np.ndarray) -> np.ndarray: ...
    def short(self, metrics: Dict[str, Any]) -> str: ...
    def draw_sample(self, ax: Any, shape: Tuple[int, int], output: np.ndarray, target: Any,
                    task: TaskSpec) -> None: ...
    def sample_label(self, target: Any, task: TaskSpec) -> Dict[str, Any]: ...
    def sample_targets(self, items: Sequence[Dict[str, Any]], task: TaskSpec) -> np.ndarray: ...
    def export_head(self, raw: Any, task: TaskSpec) -> Any: ...


TASK_KINDS: Registry[TaskKind] = Registry("task kind")


def register_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind to the registry."""
    return TASK_KINDS.register(kind.name, kind)


register_kind(TaskKind(
    name="classification", labels_key="classes", min_labels=2, name_pattern=CLASS_NAME_RE,
    name_rule="letters, digits, '_', '.', '+', '-' only (it becomes a folder name)",
    dataset_layout="folders", trainer="edge_app.train.task_kinds:CLASSIFICATION", output_name="scores"))
register_kind(TaskKind(
    name="keypoints", labels_key="points", min_labels=1, name_pattern=POINT_NAME_RE,
    name_rule="lower-case letters, digits and '_' (it becomes a CSV column prefix)",
    dataset_layout="csv", trainer="edge_app.train.task_kinds:KEYPOINTS", output_name="points"))

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

