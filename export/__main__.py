"""``python -m edge_app.export`` is ``edge-app export``."""
import sys

from edge_app.cli import run_module

if __name__ == "__main__":
    sys.exit(run_module("export"))
