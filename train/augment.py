"""Augmentation presets, defined once per task kind (as torchvision's references do).

Colour, scale, crop and small rotations for every task; a horizontal flip only where the task
allows it, and for keypoints the flip also swaps left/right point names. Keypoint geometry uses
torchvision transforms v2 with ``tv_tensors.KeyPoints`` where torchvision has it (0.23+), and a
cv2 affine fallback on NVIDIA's older Jetson wheels (torchvision 0.16 on JetPack 5).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch

from edge_app.model.preprocess import to_model_input
from edge_app.tasks.kinds import flip_pairs
from edge_app.tasks.spec import TaskSpec

Transform = Callable[[np.ndarray, Any], Tuple[torch.Tensor, Any]]
ROTATION = 10.0
SCALE = (0.85, 1.15)
TRANSLATE = 0.06


def has_keypoints() -> bool:
    """True when torchvision's transforms v2 can move key points with the image."""
    try:
        from torchvision import tv_tensors
    except ImportError:
        return False
    return hasattr(tv_tensors, "KeyPoints")


def _color() -> Any:
    from torchvision.transforms import v2

    return v2.ColorJitter(brightness=0.35, contrast=0.35, saturation=0.35, hue=0.03)


def _chw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


def eval_transform(size: Tuple[int, int]) -> Transform:
    """What validation, export parity and the live loop feed: the shared resize, no randomness."""
    def apply(image_bgr: np.ndarray, target: Any) -> Tuple[torch.Tensor, Any]:
        return _chw(to_model_input(image_bgr, size)).float(), target
    return apply


def classification_train(task: TaskSpec, size: Tuple[int, int]) -> Transform:
    from torchvision.transforms import v2

    steps = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1.333), antialias=True)]
    if task.flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.RandomRotation(ROTATION), _color()]
    pipeline = v2.Compose(steps)

    def apply(image_bgr: np.ndarray, target: Any) -> Tuple[torch.Tensor, Any]:
        return pipeline(_chw(image_bgr[:, :, ::-1])).float(), target
    return apply


class KeypointTrain:
    """Flip (with left/right swap), affine and resize moving the points with the image."""

    def __init__(self, task: TaskSpec, size: Tuple[int, int], use_v2: Optional[bool] = None) -> None:
        self.size = size
        self.flip = task.flip
        self.perm = np.arange(len(task.points))
        for a, b in flip_pairs(task.points):
            self.perm[a], self.perm[b] = b, a
        self.use_v2 = has_keypoints() if use_v2 is None else use_v2
        self.color = _color()
        if self.use_v2:
            from torchvision.transforms import v2

            self.geometry = v2.Compose([
                v2.RandomAffine(degrees=ROTATION, translate=(TRANSLATE, TRANSLATE), scale=SCALE),
                v2.Resize(size, antialias=True)])

    def __call__(self, image_bgr: np.ndarray, points: np.ndarray) -> Tuple[torch.Tensor, np.ndarray]:
        # Randomness from torch's generator: seeded by torch.manual_seed and per DataLoader worker.
        self.rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,)).item()))
        rgb = image_bgr[:, :, ::-1]
        h, w = rgb.shape[:2]
        pts = np.array(points, dtype=np.float64)
        if self.flip and self.rng.random() < 0.5:
            rgb = rgb[:, ::-1]
            pts[:, 0] = 1.0 - pts[:, 0]
            pts = pts[self.perm]
        missing = np.isnan(pts[:, 0])
        px = np.nan_to_num(pts) * (w, h)
        image, px = (self._v2 if self.use_v2 else self._cv2)(rgb, px)
        out = px / (self.size[1], self.size[0])
        out[missing] = np.nan
        return self.color(image).float(), out

    def _v2(self, rgb: np.ndarray, px: np.ndarray) -> Tuple[torch.Tensor, np.ndarray]:
        from torchvision import tv_tensors

        h, w = rgb.shape[:2]
        kp = tv_tensors.KeyPoints(torch.from_numpy(px).float(), canvas_size=(h, w))
        image, kp = self.geometry(tv_tensors.Image(_chw(rgb)), kp)
        return image.as_subclass(torch.Tensor), kp.as_subclass(torch.Tensor).numpy().astype(np.float64)

    def _cv2(self, rgb: np.ndarray, px: np.ndarray) -> Tuple[torch.Tensor, np.ndarray]:
        import cv2

        h, w = rgb.shape[:2]
        out_h, out_w = self.size
        angle = self.rng.uniform(-ROTATION, ROTATION)
        scale = self.rng.uniform(*SCALE)
        shift = self.rng.uniform(-TRANSLATE, TRANSLATE, 2) * (w, h)
        m = np.asarray(cv2.getRotationMatrix2D((w / 2.0, h / 2.0), -angle, scale), np.float64)
        m[:, 2] += shift
        m = np.diag([out_w / w, out_h / h]) @ m      # then resize, in one warp
        image = cv2.warpAffine(np.ascontiguousarray(rgb), m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
        return _chw(image), px @ m[:, :2].T + m[:, 2]
