"""Training plots as PNG: curves, confusion matrix, and validation images with predictions."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from edge_app.dataset.samples import Sample
from edge_app.errors import DatasetError
from edge_app.tasks.spec import TaskSpec
from edge_app.train.torch_data import load_sample_image


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")   # files only: no display on a Jetson or in CI
    import matplotlib.pyplot as plt

    return plt


def curves(path: Path, history: List[Dict[str, Any]], metric: str, label: str) -> None:
    """Training loss and the validation metric per epoch."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(epochs, [h["loss"] for h in history], marker=".")
    a.set(title="training loss", xlabel="epoch")
    values = [h["val"].get(metric) for h in history if h.get("val")]
    if values:
        b.plot(epochs[: len(values)], values, marker=".", color="tab:green")
    b.set(title="validation " + label, xlabel="epoch")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def confusion(path: Path, matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> None:
    """The confusion matrix with counts (rows: true class, columns: predicted)."""
    plt = _plt()
    m = np.asarray(matrix)
    size = max(3.5, 0.6 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def val_grid(path: Path, samples: Sequence[Sample], outputs: np.ndarray, targets: np.ndarray,
             task: TaskSpec, kind: Any, n: int = 16) -> None:
    """Validation images with the prediction against the truth (labels, or points: green true,
    red predicted)."""
    plt = _plt()
    n = min(n, len(samples))
    if n == 0:
        return
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in zip(range(n), axes.ravel()):
        try:
            image = load_sample_image(samples[i])
        except DatasetError:
            continue
        ax.imshow(image[:, :, ::-1])
        kind.draw_sample(ax, image.shape[:2], outputs[i], targets[i], task)
    fig.suptitle(kind.grid_title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=90)
    plt.close(fig)
