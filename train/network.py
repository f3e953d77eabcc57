"""The model every stage shares: normalisation inside, backbone features, the kind's head."""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from edge_app.tasks.spec import TaskSpec
from edge_app.train.backbones import get_backbone


class EdgeModel(nn.Module):
    """Takes RGB pixels (float, 0..255, NCHW) and returns the head's raw output: class logits,
    or normalised x,y per point. Normalisation is part of the model, so an exported graph
    takes pixels as they come from the camera."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, features: nn.Module, pool: nn.Module, head: nn.Module,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.features, self.pool, self.head = features, pool, head
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (what fast mode caches)."""
        return torch.flatten(self.pool(self.features((x - self.mean) / self.std)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def build_model(task: TaskSpec, arch: str, weights: str) -> EdgeModel:
    """Backbone ``arch`` with ``weights`` (imagenet, none or a path) and a new head for ``task``."""
    backbone = get_backbone(arch)
    kind = task.task_kind.training()
    pool = kind.pool()
    head = kind.head(backbone.channels * kind.pool_cells, task)
    return EdgeModel(backbone.build(weights), pool, head, backbone.mean, backbone.std)


def freeze_backbone(model: EdgeModel) -> None:
    """Fast mode: only the head learns; batch-norm statistics stay ImageNet's."""
    for p in model.features.parameters():
        p.requires_grad_(False)
    model.features.eval()


def param_groups(model: EdgeModel, lr: float, weight_decay: float) -> Any:
    """Full mode: the pretrained backbone learns ten times slower than the new head."""
    return [{"params": [p for p in model.features.parameters() if p.requires_grad], "lr": lr * 0.1},
            {"params": list(model.head.parameters()), "lr": lr}]


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep batch-norm statistics fixed while fine-tuning. Small batches give noisy batch
    statistics, and some backbones (EfficientNet-Lite: momentum 0.01) update their running
    statistics so slowly that weights trained on batch statistics meet stale ones at eval."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
