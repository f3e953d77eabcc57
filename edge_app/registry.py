"""Registries: one helper for every named set of plug-ins (task kinds, input kinds, backends,
detector layouts, camera shifts, backbones, hand heads), and one resolver for the
``"module:attribute"`` strings by which on-device registries name training code that is
imported only where it runs (so a Jetson without torch never loads it)."""
from __future__ import annotations

import difflib
import importlib
from typing import Callable, Dict, Iterable, Optional, Tuple, TypeVar

from edge_app.errors import UserError

T = TypeVar("T")


class Registry(Dict[str, T]):
    """Named entries of one idea, in the order they were registered.

    A plain dict for readers (``REG[name]``, ``name in REG``, ``REG.items()``); ``register``
    refuses a second entry of the same name, and ``lookup`` answers an unknown name with one
    line that lists the choices and suggests the nearest.
    """

    def __init__(self, what: str, entries: Iterable[Tuple[str, T]] = ()) -> None:
        super().__init__()
        self.what = what   # "task kind", "--backend", ...: how errors name an entry
        for name, entry in entries:
            self.register(name, entry)

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` and return it (usable as ``X = REG.register(...)``)."""
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self[name] = entry
        return entry

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@REG.decorator("name")`` registers what it decorates."""
        def add(entry: T) -> T:
            return self.register(name, entry)
        return add

    def lookup(self, name: str, hint: str = "") -> T:
        """The entry named ``name``, or a UserError naming the choices (and ``hint``)."""
        if name in self:
            return self[name]
        raise UserError(unknown(self.what, name, self, hint))

    def names(self) -> Tuple[str, ...]:
        return tuple(self)


def unknown(what: str, name: str, choices: Iterable[str], hint: str = "") -> str:
    """One line for a name that is not among ``choices``: the choices and the nearest one."""
    options = list(choices)
    near = difflib.get_close_matches(name, options, n=1)
    line = "unknown {} {!r}; choose from {}".format(what, name, ", ".join(options))
    if near:
        line += f" (did you mean {near[0]!r}?)"
    return line + ("; " + hint if hint else "")


def resolve(target: str, missing: Optional[str] = None) -> object:
    """The attribute a ``"package.module:attribute"`` string names, imported now.

    ``missing`` is the one line shown when the module cannot be imported (``{}`` is replaced
    by why); without it the ImportError propagates.
    """
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"not a 'module:attribute' target: {target!r}")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        if missing is None:
            raise
        raise UserError(missing.format(exc)) from exc
    value: object = getattr(loaded, attr)
    return value
