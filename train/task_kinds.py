"""What training does differently per task kind: head, targets, loss, metrics, augmentation.
Looked up through the task-kind registry (``TaskKind.training()``), never by name."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from edge_app.dataset.samples import Dataset
from edge_app.tasks.spec import TaskSpec
from edge_app.train.augment import KeypointTrain, Transform, classification_train
from edge_app.train.head_fitting import fit_head_ridge, fit_head_sgd
from edge_app.train.landmark_mlp import LandmarkModel
from edge_app.train.torch_data import CropAugment


class GridPool(nn.Module):
    """Adaptive average pooling to a ``cells`` x ``cells`` grid, written as two matrix
    products so that it exports to ONNX (and TensorRT) for any input size; equal to
    ``nn.AdaptiveAvgPool2d(cells)``."""

    def __init__(self, cells: int) -> None:
        super().__init__()
        self.cells = cells

    @staticmethod
    def _bins(size: int, cells: int, like: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(cells, size, dtype=like.dtype, device=like.device)
        for i in range(cells):
            start, end = (i * size) // cells, -(-((i + 1) * size) // cells)
            m[i, start:end] = 1.0 / (end - start)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        rows, cols = self._bins(h, self.cells, x), self._bins(w, self.cells, x)
        return torch.matmul(torch.matmul(rows, x), cols.t())


class ClassificationKind:
    """Cross-entropy with label smoothing and class weights; accuracy and confusion."""

    pool_cells = 1
    fit_head = fit_head_sgd   # fast mode
    # training crops up to 30% larger and off-centre, and half of them at a lower resolution
    crop_augment = CropAugment(jitter=0.3, low_res=0.5)

    def pool(self) -> nn.Module:
        return nn.AdaptiveAvgPool2d(1)

    def head(self, in_features: int, task: TaskSpec) -> nn.Module:
        return nn.Sequential(nn.Dropout(0.2), nn.Linear(in_features, len(task.classes)))

    # augmented views keep a class where it is, so image and landmark views can be paired
    views_keep_targets = True
    # --input auto keeps a landmark model without training CNNs when it finds the subject in
    # this share of the images and reaches this validation accuracy: one person's photos make
    # validation optimistic for every candidate, and a CNN that only ties the landmark model
    # there does worse on other people (the learning benchmark), for minutes of features
    enough_rate, enough_accuracy = 0.90, 0.95

    def good_enough(self, metrics: Dict[str, Any], rate: float) -> bool:
        """Is a landmark candidate good enough that auto skips the CNN candidates?"""
        return bool(metrics) and rate >= self.enough_rate and metrics["accuracy"] >= self.enough_accuracy

    def targets(self, ds: Dataset) -> np.ndarray:
        return np.array([ds.labels.index(s.label) for s in ds.samples], dtype=np.int64)

    def strata(self, targets: np.ndarray) -> List[int]:
        """Validation splits keep each class's share."""
        return [int(t) for t in targets]

    def fused_net(self, width: int, task: TaskSpec) -> nn.Module:
        """The fused model's head: a small MLP (trained by SGD)."""
        return LandmarkModel(width, len(task.classes))

    def fused_head_config(self, cfg: Any) -> Any:
        """The MLP head wants larger batches and more epochs than a linear head."""
        return dataclasses.replace(cfg, batch_size=max(cfg.batch_size, 64), epochs=max(cfg.epochs or 0, 150))

    def train_transform(self, task: TaskSpec, size: Tuple[int, int]) -> Transform:
        return classification_train(task, size)

    def batch_target(self, targets: Sequence[Any]) -> torch.Tensor:
        return torch.as_tensor(np.asarray(targets), dtype=torch.long)

    def loss_fn(self, targets: np.ndarray, n_labels: int, label_smoothing: float,
                balance: bool) -> Any:
        weight = None
        if balance:
            counts = np.bincount(targets, minlength=n_labels).astype(np.float64)
            weight = torch.tensor(len(targets) / np.maximum(counts, 1) / n_labels, dtype=torch.float32)
        ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

        def loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if ce.weight is not None and ce.weight.device != outputs.device:
                ce.weight = ce.weight.to(outputs.device)
            return ce(outputs.float(), target)
        return loss

    def metrics(self, outputs: np.ndarray, targets: np.ndarray, task: TaskSpec,
                sizes: Optional[np.ndarray] = None, norm: Optional[np.ndarray] = None) -> Dict[str, Any]:
        k = len(task.classes)
        pred = outputs.argmax(axis=1)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (targets, pred), 1)
        per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                     for i, name in enumerate(task.classes)}
        out = {"accuracy": float((pred == targets).mean()) if len(targets) else 0.0,
               "per_class": per_class, "confusion": confusion.tolist(), "n": int(len(targets))}
        if len(targets):   # of the raw outputs (logits) as training sees them
            z = outputs - outputs.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            out["nll"] = float(-log_p[np.arange(len(targets)), targets].mean())
        return out

    def score(self, metrics: Dict[str, Any]) -> float:
        """Accuracy; among equal accuracies the lower validation loss. Small validation sets
        often reach 100% early (one person's photos): the first epoch there is not the best
        model, and in full mode the warm start would never be replaced."""
        return float(metrics["accuracy"]) - 1e-4 * min(float(metrics.get("nll", 0.0)), 10.0)

    def tolerance(self, metrics: Dict[str, Any]) -> float:
        """Score differences within the validation set's noise: two images or one point,
        whichever is more. One person's validation photos put every candidate near 100%, where
        a single image decides; a later, more fine-tuned epoch is kept unless an earlier one
        beats it by more."""
        return max(2.0 / max(int(metrics.get("n", 0)), 1), 0.01)

    def count_misses(self, metrics: Dict[str, Any], missed: Sequence[Optional[str]],
                     task: TaskSpec) -> Dict[str, Any]:
        """Metrics over every image, with the images where no subject was found as errors
        (``accuracy_detected`` keeps the score on the others)."""
        n_found = int(metrics["n"])
        n = n_found + len(missed)
        rows = np.asarray(metrics["confusion"]).reshape(len(task.classes), len(task.classes))
        per_class: Dict[str, Optional[float]] = {}
        for i, name in enumerate(task.classes):
            total = int(rows[i].sum()) + sum(1 for m in missed if m == name)
            per_class[name] = float(rows[i, i] / total) if total else None
        correct = float(np.trace(rows))
        return dict(metrics, accuracy=correct / n if n else 0.0,
                    accuracy_detected=metrics["accuracy"], per_class=per_class, n=n,
                    missed=len(missed), detection_rate=n_found / n if n else 0.0)

    def describe(self, metrics: Dict[str, Any]) -> str:
        return "accuracy {:.1%}".format(metrics["accuracy"])

    headline = "accuracy"   # the metric a one-line summary reports
    normalised_by_face = False

    def agreement(self, ref: np.ndarray, got: np.ndarray, sizes: np.ndarray) -> Tuple[Dict[str, float], bool]:
        """How two runs of a model agree (export parity, FP16): the share of equal classes,
        and whether that is all of them."""
        share = float((ref.argmax(1) == got.argmax(1)).mean()) if len(ref) else 1.0
        return {"class_agreement": share}, share == 1.0

    def overall(self, metrics: Dict[str, Any], rate: float) -> float:
        """A validation score (higher is better) with the images lacking a usable subject
        counted as misses."""
        return float(metrics["accuracy"]) * rate if metrics else -np.inf

    def empty_outputs(self, task: TaskSpec) -> np.ndarray:
        return np.zeros((0, len(task.classes)), np.float32)

    def label_text(self, output: np.ndarray, task: TaskSpec) -> str:
        return task.classes[int(np.argmax(output))]

    def to_local(self, target: Any, frame: Any, size: Any) -> Any:
        """A target as a landmark model learns it: a class stays a class."""
        return target

    def flat(self, targets: np.ndarray) -> np.ndarray:
        """Targets as a head's training rows."""
        return targets

    def short(self, metrics: Dict[str, Any]) -> str:
        return "{:.1%}".format(metrics["accuracy"])

    grid_title = "prediction / truth"

    def draw_sample(self, ax: Any, shape: Tuple[int, int], output: np.ndarray, target: Any,
                    task: TaskSpec) -> None:
        """One validation image's prediction on the plots' grid (a matplotlib axis)."""
        pred, true = self.label_text(output, task), task.labels[int(target)]
        ax.set_title(f"{pred} / {true}", color="green" if pred == true else "red", fontsize=9)

    def sample_label(self, target: Any, task: TaskSpec) -> Dict[str, Any]:
        """A validation sample's label as ``val_sample/labels.json`` stores it."""
        return {"label": task.labels[int(target)], "points": None}

    def sample_targets(self, items: Sequence[Dict[str, Any]], task: TaskSpec) -> np.ndarray:
        """The targets of ``labels.json`` items (inverse of :meth:`sample_label`)."""
        return np.array([task.labels.index(item["label"]) for item in items], dtype=np.int64)

    def export_head(self, raw: torch.Tensor, task: TaskSpec) -> torch.Tensor:
        """Final outputs in the exported graph: class probabilities (N, K)."""
        return torch.softmax(raw, dim=1)


class KeypointsKind:
    """Masked smooth-L1 on normalised coordinates; RMSE in pixels, per point, and NME."""

    pool_cells = 9
    fit_head = fit_head_ridge   # fast mode
    crop_augment = CropAugment()   # points live in crop coordinates: a moved crop would move them

    def pool(self) -> nn.Module:
        return GridPool(3)   # keeps where things are, unlike a global pool

    def head(self, in_features: int, task: TaskSpec) -> nn.Module:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(in_features, 2 * len(task.points)))

    # augmentation moves points: image views and landmark views cannot be paired
    views_keep_targets = False

    def good_enough(self, metrics: Dict[str, Any], rate: float) -> bool:
        """Point models have no accuracy bar: auto always compares the candidates."""
        return False

    def strata(self, targets: np.ndarray) -> List[int]:
        """Validation splits keep the share of each pattern of labelled points (the course's
        layout labels one point per image); coordinates themselves are not strata."""
        labelled = ~np.isnan(targets.reshape(len(targets), -1, 2)[:, :, 0])
        return [int(sum(1 << i for i in np.flatnonzero(row))) for row in labelled]

    def fused_net(self, width: int, task: TaskSpec) -> nn.Module:
        """The fused model's head: the kind's linear head (fitted by ridge)."""
        return self.head(width, task)

    def fused_head_config(self, cfg: Any) -> Any:
        return cfg

    def targets(self, ds: Dataset) -> np.ndarray:
        if not ds.samples:
            return np.zeros((0, len(ds.labels), 2), np.float32)
        return np.stack([s.normalized_points(ds.coords) for s in ds.samples]).astype(np.float32)

    def train_transform(self, task: TaskSpec, size: Tuple[int, int]) -> Transform:
        return KeypointTrain(task, size)

    def batch_target(self, targets: Sequence[Any]) -> torch.Tensor:
        return torch.as_tensor(np.stack(targets), dtype=torch.float32)

    def loss_fn(self, targets: np.ndarray, n_labels: int, label_smoothing: float,
                balance: bool) -> Any:
        def loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            pred = outputs.float().view_as(target)
            mask = ~torch.isnan(target)
            if not mask.any():
                return pred.sum() * 0.0
            return nn.functional.smooth_l1_loss(pred[mask], target[mask], beta=0.02)
        return loss

    def metrics(self, outputs: np.ndarray, targets: np.ndarray, task: TaskSpec,
                sizes: Optional[np.ndarray] = None, norm: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """RMSE in pixels and normalised units, per point, and NME: the mean error over the
        eye distance, from the labelled eyes or, where they are not labelled (the course's
        layout, a nose-only task), ``norm``: the eye distance of the face found, in pixels."""
        pred = outputs.reshape(targets.shape)
        scale = sizes[:, None, :] if sizes is not None else np.ones((len(targets), 1, 2))
        err_px = np.linalg.norm((pred - targets) * scale, axis=2)        # (N, P), NaN if missing
        err_n = np.linalg.norm(pred - targets, axis=2)
        out: Dict[str, Any] = {
            "rmse_px": _rms(err_px), "rmse": _rms(err_n), "n": int(len(targets)),
            "per_point_px": {p: _rms(err_px[:, i]) for i, p in enumerate(task.points)}}
        out.update(_bias((pred - targets) * scale, task, out["rmse_px"]))
        eye, by = _eye_distance(targets, scale, task, norm)
        if eye is not None:
            # an image with no point labelled (or none predicted) has no error: NaN, skipped below
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                nme = np.nanmean(err_px, axis=1) / eye
            out["nme"] = float(np.nanmean(nme)) if np.isfinite(nme).any() else None
            out["nme_by"] = by
        return out

    def score(self, metrics: Dict[str, Any]) -> float:
        return -float(metrics["rmse"])

    def tolerance(self, metrics: Dict[str, Any]) -> float:
        """Point errors are continuous and rarely tie: the better RMSE is kept."""
        return 0.0

    def count_misses(self, metrics: Dict[str, Any], missed: Sequence[Optional[str]],
                     task: TaskSpec) -> Dict[str, Any]:
        """Point errors stay over the images with a subject; the rate says how many had one."""
        n = int(metrics["n"]) + len(missed)
        return dict(metrics, n=n, missed=len(missed),
                    detection_rate=int(metrics["n"]) / n if n else 0.0)

    headline = "rmse_px"
    normalised_by_face = True   # NME needs the eye distance of the face the subject stage found

    def agreement(self, ref: np.ndarray, got: np.ndarray, sizes: np.ndarray) -> Tuple[Dict[str, float], bool]:
        """The largest distance in pixels between the two runs' points (the absolute
        tolerance on the outputs decides)."""
        px = np.linalg.norm((ref - got) * sizes[:, None, :], axis=2)
        return {"max_point_diff_px": float(px.max()) if px.size else 0.0}, True

    def overall(self, metrics: Dict[str, Any], rate: float) -> float:
        """Minus the RMSE, inflated by the share of images without a usable subject."""
        return -float(metrics["rmse"]) / max(rate, 1e-6) if metrics else -np.inf

    def empty_outputs(self, task: TaskSpec) -> np.ndarray:
        return np.zeros((0, len(task.points), 2), np.float32)

    def describe(self, metrics: Dict[str, Any]) -> str:
        text = "RMSE {:.2f} px".format(metrics["rmse_px"])
        if metrics.get("nme") is not None:
            text += ", NME {:.3f}".format(metrics["nme"])
            if metrics.get("nme_by", "labelled eyes") != "labelled eyes":
                text += " (over the {})".format(metrics["nme_by"])
        return text

    def label_text(self, output: np.ndarray, task: TaskSpec) -> str:
        return ""

    def to_local(self, target: Any, frame: Any, size: Any) -> Any:
        """Normalised image points -> the subject's local frame (missing points stay NaN)."""
        return frame.to_local(np.asarray(target, np.float64) * np.array(size)).astype(np.float32)

    def flat(self, targets: np.ndarray) -> np.ndarray:
        return targets.reshape(len(targets), -1)

    def short(self, metrics: Dict[str, Any]) -> str:
        return "RMSE {:.4f}".format(metrics.get("rmse", float("nan")))

    grid_title = "truth (green) vs prediction (red)"

    def draw_sample(self, ax: Any, shape: Tuple[int, int], output: np.ndarray, target: Any,
                    task: TaskSpec) -> None:
        h, w = shape
        t = np.asarray(target) * (w, h)
        p = output.reshape(-1, 2) * (w, h)
        ax.scatter(t[:, 0], t[:, 1], c="lime", s=18, marker="o")
        ax.scatter(p[:, 0], p[:, 1], c="red", s=18, marker="x")

    def sample_label(self, target: Any, task: TaskSpec) -> Dict[str, Any]:
        return {"label": None, "points": np.asarray(target).tolist()}

    def sample_targets(self, items: Sequence[Dict[str, Any]], task: TaskSpec) -> np.ndarray:
        return np.array([item["points"] for item in items], dtype=np.float32)

    def export_head(self, raw: torch.Tensor, task: TaskSpec) -> torch.Tensor:
        """Final outputs in the exported graph: normalised x,y per point (N, P, 2)."""
        return raw.view(raw.shape[0], len(task.points), 2)


def _eye_distance(targets: np.ndarray, scale: np.ndarray, task: TaskSpec,
                  norm: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], str]:
    """Per-sample eye distance in pixels and where it came from (None: no eyes known)."""
    eye = np.full(len(targets), np.nan)
    if "left_eye" in task.points and "right_eye" in task.points:
        le, re = task.points.index("left_eye"), task.points.index("right_eye")
        eye = np.linalg.norm((targets[:, le] - targets[:, re]) * scale[:, 0], axis=1)
    labelled = np.isfinite(eye)
    if norm is not None and len(norm) == len(eye):
        eye = np.where(labelled, eye, np.asarray(norm, np.float64))
    if not np.isfinite(eye).any():
        return None, ""
    found = np.isfinite(eye) & ~labelled
    by = "labelled eyes" if not found.any() else "eyes of the face found" if not labelled.any() \
        else "labelled eyes, else the face found"
    return eye, by


def _bias(diff_px: np.ndarray, task: TaskSpec, rmse_px: float) -> Dict[str, Any]:
    """The systematic part of point errors: each point's mean offset in pixels (x right, y
    down) and the share of the RMSE it explains. A large share means the labels put points
    elsewhere than the model learned to (another dataset's convention), not noise."""
    if not len(diff_px) or not np.isfinite(diff_px).any():
        return {}
    with warnings.catch_warnings():   # a point labelled nowhere: its mean is NaN, said by omission
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(diff_px, axis=0)                                   # (P, 2)
    norms = np.linalg.norm(mean, axis=1)
    share = float(np.sqrt(np.nanmean(norms ** 2)) / rmse_px) if rmse_px > 0 else 0.0
    return {"bias_px": {p: [round(float(x), 3), round(float(y), 3)] for p, (x, y) in zip(task.points, mean)
                        if np.isfinite(x)},
            "bias_share": round(share, 3)}


def bias_hint(metrics: Dict[str, Any], min_images: int = 20, share: float = 0.5) -> str:
    """One line when most of the point error is a constant offset, else ""."""
    if metrics.get("n", 0) < min_images or metrics.get("bias_share", 0.0) < share:
        return ""
    offsets = ", ".join(f"{p} {x:+.1f},{y:+.1f}" for p, (x, y) in metrics["bias_px"].items())
    return ("{:.0%} of the point error is a constant offset (px, x right, y down: {}): these labels "
            "put the points elsewhere than the training data did (another convention); train "
            "on a few dozen images labelled like these, on their own (mixed into many of the old "
            "ones they barely move it)".format(metrics["bias_share"], offsets))


def _rms(err: np.ndarray) -> float:
    values = err[~np.isnan(err)]
    return float(np.sqrt(np.mean(values ** 2))) if values.size else float("nan")


CLASSIFICATION = ClassificationKind()
KEYPOINTS = KeypointsKind()
