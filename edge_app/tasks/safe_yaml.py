"""The one YAML reader for the files users hand us (task YAMLs, ``dataset.yaml``).

PyYAML's ``safe_load`` is safe against code execution but not against size: a few hundred bytes
of nested anchors and aliases (a "billion laughs") expand to gigabytes. These files never need
anchors, so the reader refuses them outright, as it refuses a file that is not UTF-8 text, a
file too large to be a configuration, and nesting deep enough to exhaust the stack. Every
failure is one line naming the file (raised as the caller's error class).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Type, Union

from edge_app.errors import UserError

MAX_BYTES = 1 << 20   # a task or dataset description is a few hundred bytes; 1 MiB is generous
MAX_DEPTH = 50        # nesting of lists and mappings; real files use 3


class _Refused(Exception):
    """Raised inside the loader; turned into the caller's one-line error."""

    def __init__(self, problem: str, line: int) -> None:
        super().__init__(problem)
        self.problem, self.line = problem, line


def _loader_class() -> Any:
    """A SafeLoader (pure Python: its composer can be checked node by node) that refuses
    anchors, aliases and deep nesting before anything is built."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise _Refused("YAML anchors and aliases (&name, *name) are not allowed here; "
                               "write the values out", line)
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Refused(f"nested more than {MAX_DEPTH} levels deep", line)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return NoAliasLoader


def parse_yaml(text: str, source: str, error: Type[UserError] = UserError) -> Any:
    """Parse YAML ``text`` (from ``source``, named in errors); raise ``error`` with one line."""
    import yaml

    loader = None
    try:
        loader = _loader_class()(text)   # the reader checks the characters here already
        return loader.get_single_data()
    except _Refused as exc:
        raise error(f"{source} (line {exc.line}): {exc.problem}")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error("{}{}: not valid YAML: {}".format(source, line, " ".join(str(problem).split())))
    except (ValueError, OverflowError, RecursionError) as exc:
        # A value YAML recognises but Python cannot build (a date like 2020-13-45, an integer
        # of thousands of digits).
        raise error("{}: not valid YAML: a value cannot be read ({})".format(
            source, " ".join(str(exc).split())[:120]))
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: Union[str, Path], error: Type[UserError] = UserError) -> Any:
    """Read and parse the YAML file ``path``; every failure is one ``error`` naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})")
    if len(data) > MAX_BYTES:
        raise error(f"{path}: larger than {MAX_BYTES >> 10} KiB: not a configuration file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {hex(data[exc.start])} at offset {exc.start}); save it as UTF-8")
    return parse_yaml(text, str(path), error)
