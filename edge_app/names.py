"""File names as text. Linux allows any bytes in a name; Python keeps those that are not UTF-8
as lone surrogates, which cannot be printed, encoded, hashed as text or handed to OpenCV (its
imread crashes on them)."""
from __future__ import annotations

from pathlib import Path


def utf8_name(path: Path) -> bool:
    """Whether the file name is valid UTF-8."""
    try:
        path.name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def printable(path: object) -> str:
    """A path as printable text: bytes that are not UTF-8 shown as ``\\xff``."""
    text = str(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:   # a surrogate that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
