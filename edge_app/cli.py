"""The ``edge-app`` command line: one entry point, one module per subcommand."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from edge_app import __version__
from edge_app.errors import UserError, one_line

# Subcommand modules, each with register(subparsers); later stages add theirs here.
COMMANDS = ("edge_app.commands.capture", "edge_app.commands.data", "train.cli", "export.cli",
            "edge_app.commands.run", "edge_app.commands.bench", "edge_app.commands.demo",
            "edge_app.commands.doctor", "edge_app.commands.studio")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-app",
        description="Capture, train, export and run camera AI models on NVIDIA Jetson.",
        epilog="Run 'edge-app COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version="edge-app " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; user mistakes print one line (``error: ...``) and exit with 2."""
    args = build_parser().parse_args(argv)
    from edge_app.log import install

    install(verbose=args.verbose)
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print("error: " + one_line(str(exc), limit=None), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0


def run_module(command: str) -> int:
    """``python -m train`` / ``python -m export``: the same as ``edge-app <command>``."""
    return main([command] + sys.argv[1:])
