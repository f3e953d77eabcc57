"""``python -m edge_app.train`` is ``edge-app train``."""
import sys

from edge_app.cli import run_module

if __name__ == "__main__":
    sys.exit(run_module("train"))
