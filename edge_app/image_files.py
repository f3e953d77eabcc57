"""Which files are images, listed the same way by sources, datasets and benchmarks."""
from __future__ import annotations

from pathlib import Path
from typing import List

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def list_images(folder: Path, recursive: bool = True) -> List[Path]:
    """Image files under ``folder`` in a stable order, skipping hidden and temporary files."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
