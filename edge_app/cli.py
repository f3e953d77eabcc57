"""The ``edge-app`` command line: one entry point, one module per subcommand.

Command modules are imported lazily: the table below names each command's module and its
one-line help, so ``edge-app --help`` lists every command without importing any of them, and
a run imports only the chosen command's module (``train`` and ``export`` pull in more than an
on-device command needs)."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional, Sequence, Tuple

from edge_app import __version__
from edge_app.errors import UserError, one_line

# name -> (module with register(subparsers), the one-line help ``edge-app --help`` shows).
# A module may register several commands (train.cli: train and eval); list them adjacently so
# the help keeps this order. tests/test_cli.py checks each help matches the module's.
COMMANDS: Tuple[Tuple[str, str, str], ...] = (
    ("capture", "edge_app.commands.capture", "collect labelled images from a camera"),
    ("data", "edge_app.commands.data", "summarise or import datasets"),
    ("train", "edge_app.train.cli", "train a model bundle from a dataset"),
    ("eval", "edge_app.train.cli", "metrics of a bundle on any dataset"),
    ("export", "edge_app.export.cli", "export a bundle to ONNX and build a TensorRT engine"),
    ("run", "edge_app.commands.run", "run models live with overlays"),
    ("bench", "edge_app.commands.bench", "benchmark a model: latency, FPS, stages, power"),
    ("demo", "edge_app.commands.demo", "the whole pipeline on the simulated camera, end to end"),
    ("doctor", "edge_app.commands.doctor",
     "check this machine: Python, OpenCV, cameras, CUDA, TensorRT, ..."),
    ("studio", "edge_app.commands.studio", "browser UI: capture, label, train, run live"),
)

def chosen_command(argv: Sequence[str]) -> Optional[str]:
    """The command ``argv`` names: its first entry that is not an option, when that is a known
    command; else None (only help, or a typo: argparse then says what is wrong)."""
    known = {name for name, _, _ in COMMANDS}
    for arg in argv:
        if arg.startswith("-"):   # no top-level option takes a value: the command comes next
            continue
        return arg if arg in known else None
    return None


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: every command is listed, but only the one ``argv`` names has
    its module imported and its options registered (none when ``argv`` is None)."""
    return _build(chosen_command(argv) if argv is not None else None)


def _build(command: Optional[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-app",
        description="Capture, train, export and run camera AI models on NVIDIA Jetson.",
        epilog="Run 'edge-app COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version="edge-app " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    module = next((m for name, m, _ in COMMANDS if name == command), None)
    for name, path, help_text in COMMANDS:
        if path == module:
            importlib.import_module(path).register(sub)   # its commands, with their options
            module = None   # registered once, even when it holds several commands
        elif name not in sub.choices:
            # A stand-in: named in the help and in argparse's "invalid choice" list. It is
            # parsed only when argv hides its command from chosen_command (main then rebuilds).
            sub.add_parser(name, help=help_text, add_help=False).set_defaults(stand_in=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; user mistakes print one line (``error: ...``) and exit with 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    if getattr(args, "stand_in", False):   # e.g. "edge-app -- train": parse with the real one
        args = _build(args.command).parse_args(argv)
    from edge_app.log import install  # lazy: after parsing, so edge-app --help never loads logging

    install(verbose=args.verbose)
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
    """``python -m edge_app.train`` / ``python -m edge_app.export``: ``edge-app <command>``."""
    return main([command] + sys.argv[1:])
