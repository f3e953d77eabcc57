"""Links out of a folder: a file is served or copied (the studio's samples and Review view) or
read from a keypoints CSV only when its real path, every link followed, is inside the dataset
or the collected folder it was reached through. A link pointing elsewhere
(``ln -s /etc/passwd DATA/thumbs_up/evil.jpg``) is refused there and listed by
``edge-app data info`` with :data:`LINK_FIX`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

LINK_FIX = "remove the link or copy the file in"
PathLike = Union[str, Path]


def real_inside(path: PathLike, root: PathLike) -> Optional[Path]:
    """The real path of ``path`` when it lies inside the real path of ``root``; None when it
    leads out (through a link or ``..``) or cannot be resolved."""
    try:
        real, base = os.path.realpath(path), os.path.realpath(root)
        inside = os.path.commonpath([real, base]) == base
    except (OSError, ValueError):   # a NUL byte, a link loop, paths on other drives
        return None
    return Path(real) if inside else None


class Inside:
    """:func:`real_inside` for many paths under one ``root``, for the readers that check
    every row: a folder's real path is found once, so a file costs one ``lstat`` unless it is
    a link itself (or its name holds a ``..``)."""

    def __init__(self, root: PathLike) -> None:
        self.base = os.path.realpath(root)
        self._folders: Dict[str, str] = {}

    def __call__(self, path: PathLike) -> Optional[Path]:
        text = os.fspath(path)
        head, name = os.path.split(text)
        if name in ("", ".", "..") or ".." in Path(head).parts or os.path.islink(text):
            return real_inside(text, self.base)
        try:
            if head not in self._folders:
                self._folders[head] = os.path.realpath(head or ".")
            real = os.path.join(self._folders[head], name)
            inside = os.path.commonpath([real, self.base]) == self.base
        except (OSError, ValueError):
            return None
        return Path(real) if inside else None


def links_out(root: PathLike) -> List[Tuple[Path, str]]:
    """Every link under ``root`` (files and folders; hidden ones and the folders under a link
    are not looked into) whose target lies outside it: (link, where it points)."""
    base = os.path.realpath(root)
    found: List[Tuple[Path, str]] = []
    for top, dirs, files in os.walk(root, onerror=lambda exc: None):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            if name.startswith(".") or not os.path.islink(path):
                continue
            if real_inside(path, base) is None:
                try:
                    target = os.readlink(path)
                except OSError:
                    target = "?"
                found.append((Path(path), target))
    return found
