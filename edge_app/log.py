"""How log messages of edge-app's own packages look on a terminal.

Library modules log (``log = logging.getLogger(__name__)``; ``log.info`` for status lines,
``log.warning`` for warnings) and never print status. The command line installs one handler on
the ``edge_app`` logger (not on the root logger, so other libraries
stay quiet) that writes what the user saw before logging existed:

- INFO: the message as is, on stdout;
- WARNING: ``warning: <message>`` on stdout;
- ERROR and above: ``error: <message>`` on stderr;
- DEBUG (only with ``-v``): ``debug: <message>`` on stdout.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional, TextIO

# Packages whose messages the command line shows (training and export are edge_app.train and
# edge_app.export).
PACKAGES = ("edge_app",)

PREFIXES = {logging.DEBUG: "debug: ", logging.INFO: "", logging.WARNING: "warning: "}


class CliFormatter(logging.Formatter):
    """The message with its level's prefix (none for INFO), plus any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.ERROR:
            prefix = "error: "
        else:
            prefix = PREFIXES.get(record.levelno, record.levelname.lower() + ": ")
        return prefix + super().format(record)


class CliHandler(logging.Handler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when a message is logged, not when
    the handler was made: pytest's capsys and ``contextlib.redirect_stdout`` swap them later."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)   # the loggers' levels decide what is shown
        self.setFormatter(CliFormatter("%(message)s"))

    def stream_for(self, record: logging.LogRecord) -> Optional[TextIO]:
        """stderr for errors, stdout for everything else (None where there is none)."""
        return sys.stderr if record.levelno >= logging.ERROR else sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream_for(record)
            if stream is None or getattr(stream, "closed", False):   # pythonw; a broken pipe
                return
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:   # noqa: BLE001 - logging's own rule: a failing handler never raises
            self.handleError(record)


def install(verbose: bool = False) -> CliHandler:
    """Install the terminal handler on edge-app's loggers (INFO, or DEBUG with ``verbose``).

    Idempotent: a second call (``main()`` runs many times in one test process, and the demo
    calls it for each step) replaces the earlier handler instead of adding another, and
    updates the level."""
    handler = CliHandler()
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, CliHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        # Propagation stays on: pytest's caplog (a root handler) still sees the records. The
        # root logger has no handler of ours, so nothing is printed twice.
    return handler
