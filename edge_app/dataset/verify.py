"""Decode each image of a dataset once: sizes for the summary, problems for the report."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from edge_app.cv import cv2


def check_image_bytes(data: bytes) -> str:
    """Why these bytes are not a whole image, or ``""``. Catches truncated JPEG/PNG files,
    which OpenCV would otherwise decode into a half-grey picture without an error."""
    if not data:
        return "empty file"
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        return "truncated JPEG (no end marker): the file was cut short"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        return "truncated PNG (no IEND chunk): the file was cut short"
    return ""


def read_image(path: Union[str, Path]) -> Tuple[Optional[np.ndarray], str]:
    """Load a BGR image, or return ``(None, reason)`` for an unreadable or corrupt file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, "cannot read: {}".format(exc.strerror or exc)
    problem = check_image_bytes(data)
    if problem:
        return None, problem
    cv = cv2()
    image = cv.imdecode(np.frombuffer(data, np.uint8), cv.IMREAD_COLOR)
    if image is None:
        return None, "not an image OpenCV can decode"
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
