"""Errors that a user can fix. The CLI prints them as one line, never as a traceback."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, Optional, Tuple


class UserError(Exception):
    """A problem with the user's input (file, option, device) and how to fix it."""


class SpecError(UserError):
    """A task spec (YAML) that is missing, malformed or invalid."""


class DatasetError(UserError):
    """A dataset folder that cannot be read or does not match the task."""


class SourceError(UserError):
    """A frame source (camera, file, stream) that cannot be opened or read."""


class ImageError(UserError):
    """An image file that cannot be read: unreadable, corrupt, not an image, or larger than the
    pixel limit. ``name`` is the file, ``reason`` what is wrong with it (a line of its own)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}" if name else reason)
        self.name, self.reason = name, reason

    def __reduce__(self) -> Tuple[Any, Tuple[str, str]]:   # pickled across DataLoader workers
        return (type(self), (self.name, self.reason))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def one_line(message: str, limit: Optional[int] = 400) -> str:
    """Squash whitespace so that a message prints as one line."""
    text = " ".join(str(message).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
