"""Options shared by several subcommands, defined once."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Optional

from edge_app.errors import UserError
from edge_app.sources.factory import source_help


def add_task(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--task", required=required, metavar="TASK",
                        help="a built-in task (thumbs, emotions, fingers, face) or a YAML file")


def add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, metavar="SOURCE", help=source_help())
    parser.add_argument("--width", type=int, help="ask the camera for this width (default 640; "
                        "1280 for CSI)")
    parser.add_argument("--height", type=int, help="ask the camera for this height")
    parser.add_argument("--fps", type=float, help="ask the camera for this frame rate")


def check_out_file(option: str, text: Optional[str], expand: bool = False) -> None:
    """An output file option (``--json FILE`` and the like), checked before the work it reports:
    its folder exists and is writable, and it is not itself a folder. ``expand``: the writer
    expands ``~``."""
    if text is None or text == "-":
        return
    path = Path(text).expanduser() if expand else Path(text)
    if path.is_dir():
        raise UserError(f"{option} {text}: is a folder; give a file name such as {path / 'out.json'}")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"{option} {text}: folder {folder} does not exist; create it or write elsewhere")
    if not os.access(str(folder), os.W_OK | os.X_OK):
        raise UserError(f"{option} {text}: folder {folder} is not writable; write elsewhere")


def check_out_folder(option: str, text: str) -> None:
    """An output folder option (``--out DIR``): a folder, or a name that can be made one (the
    nearest existing folder above it is a writable folder)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {text}: is a file, not a folder; give a new folder's name")
    above = next(p for p in [path, *path.absolute().parents] if p.exists())
    if not above.is_dir():
        raise UserError(f"{option} {text}: {above} is a file, not a folder; give another name")
    if above != path and not os.access(str(above), os.W_OK | os.X_OK):
        raise UserError(f"{option} {text}: folder {above} is not writable; write elsewhere")


def check_number(option: str, value: Optional[float], low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, rule: str = "") -> None:
    """A number option: finite (nan and inf are refused) and within [low, high] (``low_open``:
    above ``low``); one line saying what it must be."""
    if value is None:
        return
    bad = (not math.isfinite(value) or value > high or value < low or (low_open and value == low))
    if bad:
        raise UserError(f"{option} {value}: must be {rule}")
