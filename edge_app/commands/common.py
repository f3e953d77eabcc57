"""Options shared by several subcommands, defined once."""
from __future__ import annotations

import argparse

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
