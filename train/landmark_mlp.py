"""The landmark model kind: a small MLP on the subject's normalised landmarks (position,
scale, rotation and handedness removed; see edge_app.subject.landmarks). It trains in seconds
on a CPU or a Jetson, exports to ONNX and runs through the same backends as the CNNs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from edge_app.dataset.samples import Dataset, Sample
from edge_app.dataset.verify import read_image
from edge_app.errors import DatasetError, UserError
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import (
    FACE_MESH,
    MESH_POINTS,
    LocalFrame,
    feature_size,
    join_features,
    landmark_features,
    split_features,
)
from edge_app.subject.texture import texture_features, texture_looks
from edge_app.tasks.spec import TaskSpec
from edge_app.train.detector_baseline import point_names
from edge_app.train.hand_models import head_by_arch
from edge_app.train.head_fitting import fit_head_sgd


class LandmarkModel(nn.Module):
    """Flattened local landmarks in, the task's raw outputs (logits or local points) out.
    With a ``prior`` (outputs x features), the MLP learns a correction to ``prior @ x``: for
    a point the detector also gives, its own estimate. Trained from zero, the MLP alone put
    the five points of other people's faces further off than Face Mesh's raw points (NME
    10.2% vs 8.4%, MTFL lfw -> AFLW; 9.4% with the prior); weight decay on the correction
    pulls toward the detector's answer, and what the MLP learns is the dataset's own
    convention (where it puts "the nose")."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 128,
                 prior: Optional[np.ndarray] = None) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.1),
                                  nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_features))
        self.prior: Optional[torch.Tensor]
        if prior is not None:
            self.register_buffer("prior", torch.as_tensor(prior, dtype=torch.float32))
        else:
            self.prior = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x)
        return out if self.prior is None else out + x @ self.prior.t()


MLP_ARCH = "landmark_mlp"   # the bundle arch of LandmarkModel; hand heads have their own


def make_model(task: TaskSpec, schema: str, width: int, arch: str = MLP_ARCH) -> nn.Module:
    """The landmark model a bundle's ``arch`` names: the MLP (with the detector's points as a
    prior for points) or a declared hand head (train.hand_heads: counting fingers, the
    thumb's direction); one line for an arch of a later release."""
    head = head_by_arch(arch)
    if head is not None:
        return head.build(task)
    if arch != MLP_ARCH:
        raise UserError(f"landmark model '{arch}' is from a later edge-app; upgrade edge-app to load "
                        "it")
    return LandmarkModel(width, out_features(task), prior=point_prior(task, schema, width))


def out_features(task: TaskSpec) -> int:
    return task.task_kind.output_size(task.labels)


def point_prior(task: TaskSpec, schema: str, width: Optional[int] = None) -> Optional[np.ndarray]:
    """For point tasks, the matrix (2P x ``width`` features, by default the schema's) that
    reads each task point the detector also gives from the features' local block (a mean over
    its mesh points); None when the task has no such point."""
    if not task.points:
        return None
    if schema == "face_mesh":
        where = {name: [MESH_POINTS.index(i) for i in idx] for name, idx in FACE_MESH.items()}
    else:
        where = {name: [i] for i, name in enumerate(point_names(schema.split("_")[0]))}
    prior = np.zeros((2 * len(task.points), width or feature_size(schema)), np.float32)
    for j, name in enumerate(task.points):
        for i in where.get(name, []):
            for axis in (0, 1):
                prior[2 * j + axis, 2 * i + axis] = 1.0 / len(where[name])
    return prior if prior.any() else None


@dataclass
class LandmarkData:
    """Features, targets and the frames that map local points back to pixels."""

    samples: List[Sample]
    x: np.ndarray                 # (N, F)
    y: np.ndarray                 # class indices, or (N, P, 2) local points
    frames: List[LocalFrame]

    @property
    def sizes(self) -> np.ndarray:
        """Local units in pixels, per sample: metrics on local points come out in pixels."""
        return np.array([[f.scale, f.scale] for f in self.frames], dtype=np.float64)


def landmark_data(ds: Dataset, subjects: Sequence[Optional[Subject]], targets: np.ndarray, kind: Any,
                  schema: str) -> Tuple[LandmarkData, List[Sample]]:
    """The samples whose subject has usable landmarks of ``schema``, and those without
    (misses); targets in the subject's local frame where ``kind`` (the task kind's training
    side) says so."""
    keep, xs, ys, frames, missed = [], [], [], [], []
    for s, subject, t in zip(ds.samples, subjects, targets):
        found = landmark_features(subject, schema)
        if found is None:
            missed.append(s)
            continue
        x, frame = found
        keep.append(s)
        xs.append(x)
        frames.append(frame)
        ys.append(kind.to_local(t, frame, s.size))
    width = len(xs[0]) if xs else feature_size(schema)
    y = np.array(ys, dtype=targets.dtype).reshape((len(ys),) + targets.shape[1:])
    return LandmarkData(keep, np.array(xs, np.float32).reshape(len(xs), width), y, frames), missed


def texture_data(samples: Sequence[Sample], x: np.ndarray, scan: Any, ds: Dataset,
                 progress: bool = False, looks: bool = False
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Landmark features ``x`` of ``samples`` (a landmark view of ``ds``) followed by the HOG
    of each subject's aligned crop (edge_app.subject.texture); with ``looks``, also the
    texture's other looks (N, K, T) for training views."""
    from tqdm import tqdm

    subject_of = {id(s): sub for s, sub in zip(ds.samples, scan.subjects)}
    rows, other = [], []
    for s in tqdm(samples, desc="texture", unit="img", leave=False, disable=not progress):
        subject = subject_of[id(s)]
        image, problem = read_image(s.path)
        if image is None:   # verified before training; changed on disk since
            raise DatasetError(f"{s.path}: {problem}")
        found = landmark_features(subject, None)
        assert found is not None and subject is not None
        rows.append(texture_features(image, found[1], subject.kind))
        if looks:
            other.append(texture_looks(image, found[1], subject.kind))
    tex = np.array(rows, np.float32).reshape(len(rows), -1)
    joined = np.concatenate([x, tex], axis=1) if len(rows) else x
    return joined, (np.array(other, np.float32) if looks and other else None)


def _rotations(rng: np.random.Generator, n: int, limit: float) -> np.ndarray:
    angle = rng.uniform(-limit, limit, n)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)   # (N, 2, 2)


def augment_views(x: np.ndarray, y: np.ndarray, views: int, seed: int, schema: str,
                  looks: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The originals plus ``views`` copies jittered in landmark space: a small rotation,
    scale and shift of the local points (normalisation noise), per-point noise, sometimes one
    point lost (set to the centre), and the orientation turned as a tilted camera would; the
    upright points and the measures follow from both. A texture block after the landmark
    features is kept, or in each copy, where ``looks`` (N, K, T) are given, replaced for half
    the rows by one of its other looks (a blurred or badly exposed camera)."""
    rng = np.random.default_rng(seed)
    # a texture block after the landmark features (the texture kind) is kept as it is
    x, extra = x[:, :feature_size(schema)], x[:, feature_size(schema):]
    xs, ys = [x], [y]
    pts, orient = split_features(x, schema)
    for _ in range(views):
        rot = _rotations(rng, len(x), 0.12)
        scale = rng.uniform(0.9, 1.1, (len(x), 1, 1))
        shift = rng.uniform(-0.05, 0.05, (len(x), 1, 2))
        move = lambda p: (p @ np.transpose(rot, (0, 2, 1))) * scale + shift  # noqa: E731
        out = move(pts) + rng.normal(0, 0.015, pts.shape)
        lost = rng.random(len(x)) < 0.3
        which = rng.integers(0, pts.shape[1], len(x))
        out[lost, which[lost]] = out[lost].mean(axis=1)
        turned = np.einsum("nij,nj->ni", _rotations(rng, len(x), 0.25), orient)
        xs.append(join_features(out, turned, schema))
        ys.append(y if y.ndim == 1 else move(y).astype(np.float32))
    extras = [extra] + [_other_looks(extra, looks, rng) for _ in range(views)]
    return np.concatenate([np.concatenate(xs), np.concatenate(extras)], axis=1), np.concatenate(ys)


def _other_looks(extra: np.ndarray, looks: Optional[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``extra`` with half its rows swapped for a random one of their ``looks``."""
    if looks is None or not extra.shape[1]:
        return extra
    out = extra.copy()
    rows = np.flatnonzero(rng.random(len(extra)) < 0.5)
    out[rows] = looks[rows, rng.integers(0, looks.shape[1], len(rows))]
    return out


def fit(train: Any, val: Any, task: TaskSpec, cfg: Any, device: Any, schema: str,
        arch: str = MLP_ARCH) -> Tuple[nn.Module, Any]:
    """Train the landmark model ``arch`` (:func:`make_model`) on augmented views with the fast
    mode's head trainer. ``train`` and ``val`` hold ``features``, ``targets`` and (validation)
    ``sizes`` (an ``edge_app.train.candidate.View``)."""
    import dataclasses

    kind = task.task_kind.training()
    width = train.features.shape[1]
    model = make_model(task, schema, width, arch)
    x, y = augment_views(train.features, train.targets, max(cfg.views, 1) * 2, cfg.seed, schema,
                         train.looks)
    tuned = dataclasses.replace(cfg, batch_size=max(cfg.batch_size, 64), lr=cfg.lr or 3e-3,
                                epochs=max(cfg.epochs or 0, 150))
    history, best, best_epoch = fit_head_sgd(kind, model, x, kind.flat(y),
                                             val.features, val.targets, val.sizes, tuned, task, device)
    return model.cpu().eval(), (history, best, best_epoch)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(np.asarray(x, np.float32))).numpy()
