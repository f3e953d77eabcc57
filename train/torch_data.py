"""Torch datasets over the samples of an edge-app dataset."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edge_app.dataset.samples import Sample
from edge_app.dataset.verify import read_image
from edge_app.errors import DatasetError
from edge_app.opencv import cv2
from edge_app.subject.crop import CropBox, crop_image
from edge_app.train.augment import Transform


@dataclass(frozen=True)
class CropAugment:
    """How training varies a subject's crop beyond the task's own augmentation."""

    jitter: float = 0.0     # up to this much larger, moved by up to a third of it
    low_res: float = 0.0    # chance of seeing the crop as a farther or poorer camera gives it
    min_side: int = 40      # pixels: the smallest side such a crop is rendered at


class ImageDataset(Dataset):
    """Loads each sample's image (BGR), applies ``transform(image, target)``."""

    def __init__(self, samples: Sequence[Sample], targets: Sequence[Any], transform: Transform,
                 crop_augment: CropAugment = CropAugment()) -> None:
        self.samples, self.targets, self.transform = list(samples), list(targets), transform
        self.crop_augment = crop_augment

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, Any]:
        sample, aug = self.samples[i], self.crop_augment
        if aug.jitter and sample.crop is not None:
            sample = dataclasses.replace(sample, crop=jitter_crop(sample.crop, aug.jitter))
        image = load_sample_image(sample)
        if aug.low_res and sample.crop is not None and float(torch.rand(1)) < aug.low_res:
            image = lower_resolution(image, aug.min_side)
        return self.transform(image, self.targets[i])


def lower_resolution(image: np.ndarray, min_side: int) -> np.ndarray:
    """``image`` at a random side between ``min_side`` and its own (area-averaged, as a sensor
    does). A crop always fills the model input, so a hand far from the camera or a 100-pixel
    photo reaches the model upscaled and soft; a model trained only on sharp, near crops reads
    the fine detail of one person's hand (knuckles, a folded thumb) that such crops lack."""
    h, w = image.shape[:2]
    if max(h, w) <= min_side:
        return image
    scale = (min_side + (max(h, w) - min_side) * float(torch.rand(1))) / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2().resize(image, size, interpolation=cv2().INTER_AREA)


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
        raise DatasetError(f"{sample.path}: {problem}")
    if sample.crop is not None:
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
