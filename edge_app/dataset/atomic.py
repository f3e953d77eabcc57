"""Writes that never leave half a file: a temp file in the same folder, fsync, rename; and
JSON text that every reader parses."""
from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, Union

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


def json_text(value: Any, default: Optional[Callable[[Any], Any]] = None, **options: Any) -> str:
    """``json.dumps`` for everything the project writes: NaN and infinities (a metric of no
    sample, a diverged score) become null, since Python's default writes the bare ``NaN`` that
    JSON does not have and other readers refuse; ``allow_nan=False`` then proves none is left.
    ``default`` turns other objects (numpy scalars, paths) into JSON values first."""
    return json.dumps(finite(value, default), allow_nan=False, **options)


def finite(value: Any, default: Optional[Callable[[Any], Any]] = None) -> Any:
    """``value`` with every float that is not finite replaced by None, through dicts, lists and
    tuples (and through what ``default`` makes of other objects)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {k: finite(v, default) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, default) for v in value]
    if default is not None:
        made = default(value)
        if type(made) is not type(value):   # a numpy scalar becomes a float, a path a str, ...
            return finite(made, default)
        return made
    return value
