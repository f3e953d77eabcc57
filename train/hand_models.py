"""Landmark models for hand tasks whose classes say what the hand does in a way the task spec
declares: ``count: fingers`` (each class is a number of raised fingers) and ``thumb: {...}``
(each class is where the thumb points). Each reads only the part of the hand that the
declaration says matters, so it carries to people who hold the rest of the hand otherwise.

Why: a free MLP on all the landmark features learns what each class looks like on the
training hands. For "3", the three fingers that person raises; other people raise other
fingers for the same number (American sign digits: thumb, index and middle; set1: index,
middle and ring). For a thumbs-up, the way that person holds the fist, so a thumb clearly
pointing down on someone else's hand scored 50/50. Measured (`benchmarks/learning.py`, 3
seeds, landmark input, misses counted):
  fingers_set1 (one person) -> signdigits 1-5 (~200 people): MLP 97.6%, counting 98.3%;
  signdigits -> set1 (the other way, untuned): MLP 80.3%, rule 87.9%, counting 97.8%;
  thumbs, one person -> the two others: see the README's learning table.

Both export to ONNX as plain arithmetic and train in seconds like the MLP. A registry
(:data:`HEADS`) maps the spec's declaration to the model and the bundle's ``arch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_app.registry import Registry
from edge_app.subject.landmarks import measure_columns, upright_columns
from edge_app.tasks.spec import TaskSpec

THUMB_CMC, THUMB_TIP = 1, 4
DIRECTIONS = {"up": (0.0, -1.0), "down": (0.0, 1.0)}   # image y grows downwards


def _mlp(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class FingerCountModel(nn.Module):
    """``count: fingers``. One small network says, from one finger's own measures (its three
    joint bends, its reach from the wrist, its tip from the palm), whether that finger is
    raised; the four fingers share it (so which fingers are up does not matter) and the thumb
    has its own on the same measures (it bends and reaches differently; given its direction
    and its distance to the index base too, it learned the training person's thumb). The
    class scores are the log-probabilities of each count under those five independent
    "raised" probabilities (a Poisson-binomial distribution)."""

    thumb_columns: torch.Tensor
    finger_columns: torch.Tensor
    counts: torch.Tensor

    def __init__(self, counts: List[int], hidden: int = 16) -> None:
        super().__init__()
        bends, reach, palm = (measure_columns(b) for b in ("bends", "reach", "palm"))
        columns = [[bends[3 * f], bends[3 * f + 1], bends[3 * f + 2], reach[f], palm[f]] for f in range(5)]
        self.register_buffer("thumb_columns", torch.tensor(columns[0]))
        self.register_buffer("finger_columns", torch.tensor(columns[1:]))
        self.register_buffer("counts", torch.tensor(counts))
        self.thumb = _mlp(len(columns[0]), hidden)
        self.finger = _mlp(len(columns[0]), hidden)

    def raised(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 5) probability that each finger, thumb first, is raised."""
        return torch.sigmoid(self.logits(x)[:, 1])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 2, 5): each finger's log-odds of being down (row 0) and raised (row 1)."""
        fingers = self.finger(x[:, self.finger_columns]).squeeze(-1)
        z = torch.cat([self.thumb(x[:, self.thumb_columns]), fingers], 1)
        return torch.stack([-z, z], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # log P(count) in log space, one finger at a time, so that counts far from the answer
        # keep their order (and gradient); -1e4 stands for log 0 and stays finite in FP16
        down, up = F.logsigmoid(self.logits(x)).unbind(1)
        log_p = torch.zeros_like(down[:, :1])
        never = torch.full_like(log_p, -1e4)
        for k in range(down.shape[1]):
            log_p = torch.logsumexp(torch.stack([torch.cat([log_p, never], 1) + down[:, k:k + 1],
                                                 torch.cat([never, log_p], 1) + up[:, k:k + 1]]), 0)
        # log-probabilities are logits: softmax over the task's classes renormalises them
        return log_p[:, self.counts]


class ThumbDirectionModel(nn.Module):
    """``thumb: {class: up | down}``. The thumb's direction in the picture (tip from its base,
    from the upright points: moved, scaled and mirrored, never turned) against each class's
    direction; what it learns is how sure to be (one scale). Nothing else of the hand is read:
    the way one person holds the fist is what the free MLP learned instead."""

    tip_columns: torch.Tensor
    base_columns: torch.Tensor
    directions: torch.Tensor

    def __init__(self, directions: List[str]) -> None:
        super().__init__()
        self.register_buffer("tip_columns", torch.tensor(upright_columns(THUMB_TIP)))
        self.register_buffer("base_columns", torch.tensor(upright_columns(THUMB_CMC)))
        self.register_buffer("directions", torch.tensor([DIRECTIONS[d] for d in directions]))
        self.log_scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x[:, self.tip_columns] - x[:, self.base_columns]
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return self.log_scale.exp() * (d @ self.directions.t())


@dataclass(frozen=True)
class HandHead:
    """A declared hand task's landmark model: when it applies, how to build it, its arch."""

    arch: str
    applies: Callable[[TaskSpec], bool]
    build: Callable[[TaskSpec], nn.Module]
    says: str      # the training log's line


HEADS: Registry[HandHead] = Registry("hand head", {
    "count": HandHead("finger_count", lambda t: t.count == "fingers",
                      lambda t: FingerCountModel([int(c) for c in t.classes]),
                      "the classes count raised fingers (count: fingers): one 'is it raised?' "
                      "model for every finger, added up"),
    "thumb": HandHead("thumb_direction", lambda t: bool(t.thumb),
                      lambda t: ThumbDirectionModel([dict(t.thumb)[c] for c in t.classes]),
                      "the classes are where the thumb points (thumb: in the task): the model "
                      "reads the thumb's direction"),
}.items())


def head_for(task: TaskSpec, schema: str) -> Optional[HandHead]:
    """The declared head that trains ``task`` on ``schema`` features, or None (the MLP)."""
    if schema != "hand":
        return None
    return next((h for h in HEADS.values() if h.applies(task)), None)


def head_by_arch(arch: str) -> Optional[HandHead]:
    """The head a bundle's ``arch`` names, or None (the MLP)."""
    return next((h for h in HEADS.values() if h.arch == arch), None)
