"""Writes that never leave half a file: a temp file in the same folder, fsync, rename."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Union

TMP_MARK = ".part-"   # temp names: ".<name>.part-<random>"; readers skip dot-files


def temp_path(path: Path) -> Path:
    """A hidden temp name beside ``path`` (same filesystem, so the rename is atomic)."""
    return path.with_name(f".{path.name}{TMP_MARK}{uuid.uuid4().hex[:8]}")


def atomic_write_bytes(path: Union[str, Path], data: bytes, chunk: int = 1 << 20) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the whole new one.
    On any error (full disk included) the temp file is removed and the error re-raised."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            view = memoryview(data)
            for start in range(0, len(view), chunk):
                fh.write(view[start:start + chunk])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: Union[str, Path], text: str) -> Path:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: Union[str, Path], line: str) -> None:
    """Append one line; on failure the file is cut back to its old length, so a full disk
    never leaves half a row."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    with open(path, "ab") as fh:
        size = fh.tell()
        try:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            try:
                fh.truncate(size)
            except OSError:
                pass
            raise
