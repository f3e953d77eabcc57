"""The counting model for tasks whose classes are numbers of raised fingers (``count: fingers``).

A free MLP on the hand's landmarks learns what each class looks like on the training hands:
for "3", the three fingers that person raises. Other people raise other fingers for the same
number (American sign digits: thumb, index and middle; set1: index, middle and ring) and
hold them differently, and a rule that just counts extended fingers beat the free MLP on
them. This model is that rule, learned: one small network says, from one finger's own
measures (its three joint bends, its reach from the wrist, its tip from the palm), whether
that finger is raised; the four fingers share it (so which fingers are up does not matter)
and the thumb has its own on the same measures (it bends and reaches differently; its
direction and its distance to the index base made it learn the training person's thumb).
The class scores are the log-probabilities of each count under those five independent
"raised" probabilities (a Poisson-binomial distribution), so the graph exports to ONNX as
plain arithmetic.

Measured (`benchmarks/learning.py --tasks fingers,fingers-rev --inputs landmarks`, 3 seeds):
fingers_set1 (one person) -> signdigits 1-5 (~200 people) 97.6% -> 98.3%, and the other way
round 80.3% -> 97.8%, where the rule gets 87.9%.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn

from edge_app.subject.landmarks import measure_columns
from edge_app.task_spec import TaskSpec

ARCH = "finger_count"


def counts_of(task: TaskSpec) -> List[int]:
    """The count each class stands for (class names are numbers: the task spec checks it)."""
    return [int(name) for name in task.classes]


def uses_count_model(task: TaskSpec, schema: str) -> bool:
    """Does this task's landmark model count (``count: fingers`` on hand features)?"""
    return task.count == "fingers" and schema == "hand"


def _mlp(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class FingerCountModel(nn.Module):
    """Hand features in (``feature_size("hand")`` wide, or wider: a texture block after them is
    not read), each class's log-probability out."""

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
        fingers = self.finger(x[:, self.finger_columns]).squeeze(-1)
        return torch.sigmoid(torch.cat([self.thumb(x[:, self.thumb_columns]), fingers], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.raised(x)
        dist = torch.ones_like(p[:, :1])
        none = torch.zeros_like(dist)
        for k in range(p.shape[1]):   # add one finger at a time: P(count) after k + 1 fingers
            q = p[:, k:k + 1]
            dist = torch.cat([dist, none], 1) * (1 - q) + torch.cat([none, dist], 1) * q
        # log-probabilities are logits: softmax over the task's classes renormalises them
        return torch.log(dist.clamp_min(1e-6))[:, self.counts]
