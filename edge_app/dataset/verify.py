"""Decode each image of a dataset once: sizes for the summary, problems for the report.

:func:`read_image` is the one place dataset images are read (training, subject scans, parity,
sizes): it honours the dataset's ``rotate:`` (``dataset.yaml``), so every reader sees the
picture upright. Labels (keypoints in ``labels.csv``, subjects in ``subjects.jsonl``) are in the
coordinates of that upright picture; the stored files are as the camera delivered them."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.camera.rotation import parse_rotation, rotate_image
from edge_app.errors import ImageError, UserError
from edge_app.image_files import load_image
from edge_app.tasks.safe_yaml import load_yaml

META_NAME = "dataset.yaml"   # edge_app.dataset.samples.META_FILE (model imports this module)
_rotations: Dict[Tuple[str, int, int, int], int] = {}   # (file, inode, mtime_ns, size) -> rotate
_lock = threading.Lock()


def dataset_yaml_of(path: Union[str, Path]) -> Optional[Path]:
    """The ``dataset.yaml`` of the dataset holding the image ``path`` (the nearest one in its
    folder or above), or None. Looked up on every call, not cached: a dataset created or
    moved while a process runs (the studio, capture) is seen at once, for a few stat calls."""
    folder = Path(path).absolute().parent
    for candidate in (folder,) + tuple(folder.parents):
        meta = candidate / META_NAME
        if meta.is_file():
            return meta
    return None


def declared_rotation(path: Union[str, Path]) -> int:
    """The ``rotate:`` (0, 90, 180, 270) declared by the dataset holding the image ``path``;
    0 when it declares none, or when the nearest ``dataset.yaml`` is not one edge-app can read
    (another tool's file above a plain folder dataset; a broken dataset.yaml of the dataset
    itself is reported by the dataset reader, with its line)."""
    meta_path = dataset_yaml_of(path)
    if meta_path is None:
        return 0
    try:
        st = meta_path.stat()
    except OSError:
        return 0
    key = (str(meta_path), st.st_ino, st.st_mtime_ns, st.st_size)   # atomic writes change the inode
    with _lock:
        if key in _rotations:
            return _rotations[key]
    rotation = _rotate_key(meta_path)
    with _lock:
        _rotations[key] = rotation
    return rotation


def _rotate_key(meta_path: Path) -> int:
    """``rotate:`` of one ``dataset.yaml``, 0 when unreadable or invalid (the dataset reader,
    :func:`edge_app.dataset.meta.read_meta`, reports those with their line). Read here without
    the full check so this module stays below the one that checks (meta imports model, model
    imports this)."""
    try:
        meta = load_yaml(meta_path, UserError)
        value = meta.get("rotate", 0) if isinstance(meta, dict) else 0
        return 0 if isinstance(value, bool) else parse_rotation(value, str(meta_path))
    except UserError:
        return 0


def read_image(path: Union[str, Path], rotate: Optional[int] = None) -> Tuple[Optional[np.ndarray], str]:
    """Load a BGR image, upright, or return ``(None, reason)`` for an unreadable or corrupt
    file, or one above the pixel limit (:func:`edge_app.image_files.load_image`). ``rotate``
    (clockwise degrees) defaults to the ``rotate:`` of the dataset holding the file (see
    :func:`declared_rotation`); pass 0 for the stored pixels as they are."""
    try:
        image = load_image(path)   # the one reader: header size checked, then decoded
    except ImageError as exc:
        return None, exc.reason
    rotation = declared_rotation(path) if rotate is None else rotate
    if rotation:
        image = rotate_image(image, rotation)
    return image, ""


def _size(path: Path) -> Tuple[Optional[Tuple[int, int]], str]:
    image, problem = read_image(path)
    if image is None:
        return None, problem
    return (int(image.shape[1]), int(image.shape[0])), ""


def image_sizes(paths: Sequence[Path], progress: bool = False) -> List[Tuple[Optional[Tuple[int, int]], str]]:
    """Each image's (width, height), or None and what is wrong with it; decoded in threads."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:   # OpenCV decodes outside the GIL
        results = pool.map(_size, list(paths))
        if progress and len(paths) > 200:
            from tqdm import tqdm

            results = tqdm(results, total=len(paths), desc="checking images", unit="img", leave=False)
        return list(results)
