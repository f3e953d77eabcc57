"""Torch datasets over the samples of an edge-app dataset."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edge_app.dataset.model import Sample
from edge_app.dataset.verify import read_image
from edge_app.errors import DatasetError
from train.augment import Transform


class ImageDataset(Dataset):
    """Loads each sample's image (BGR), applies ``transform(image, target)``."""

    def __init__(self, samples: Sequence[Sample], targets: Sequence[Any], transform: Transform,
                 crop_jitter: float = 0.0) -> None:
        self.samples, self.targets, self.transform = list(samples), list(targets), transform
        self.crop_jitter = crop_jitter

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, Any]:
        sample = self.samples[i]
        if self.crop_jitter and sample.crop is not None:
            sample = dataclasses.replace(sample, crop=jitter_crop(sample.crop, self.crop_jitter))
        return self.transform(load_sample_image(sample), self.targets[i])


def jitter_crop(crop: Tuple[float, float, float], amount: float) -> Tuple[float, float, float]:
    """A subject crop (x0, y0, side) made up to ``amount`` larger and moved by up to a third
    of that: training then also sees the subject smaller, off-centre and with the border fill
    of crops that reach past the frame, as other cameras, detectors and close-ups give it
    (torch's RNG, so DataLoader workers and seeds stay reproducible)."""
    x0, y0, side = crop
    u = torch.rand(3).tolist()
    grown = side * (1.0 + amount * u[0])
    cx = x0 + side / 2 + (u[1] - 0.5) * 2 * amount / 3 * side
    cy = y0 + side / 2 + (u[2] - 0.5) * 2 * amount / 3 * side
    return (cx - grown / 2, cy - grown / 2, grown)


def load_sample_image(sample: Sample) -> np.ndarray:
    """The image a model sees for ``sample`` (BGR): the file, or its subject's crop."""
    image, problem = read_image(sample.path)
    if image is None:   # verified before training; changed on disk since
        raise DatasetError("{}: {}".format(sample.path, problem))
    if sample.crop is not None:
        from edge_app.subject.crop import CropBox, crop_image

        image = crop_image(image, CropBox(*sample.crop))
    return image


def default_workers() -> int:
    """DataLoader workers sized to the machine (decoding and augmenting run there)."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def loader(dataset: ImageDataset, batch_size: int, shuffle: bool, workers: Optional[int],
           collate_target: Any, pin: bool = False, seed: int = 0) -> DataLoader:
    def collate(batch: List[Tuple[torch.Tensor, Any]]) -> Tuple[torch.Tensor, torch.Tensor]:
        images, targets = zip(*batch)
        return torch.stack(images), collate_target(targets)

    n = default_workers() if workers is None else workers
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=n,
                      collate_fn=collate, pin_memory=pin, persistent_workers=n > 0,
                      generator=generator, drop_last=False)


def sizes_of(samples: Sequence[Sample]) -> np.ndarray:
    """(N, 2) image widths and heights (samples are verified, so sizes are known)."""
    return np.array([s.size or (1, 1) for s in samples], dtype=np.float64)
