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

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import IO, Iterator, Optional, TextIO

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


# What MediaPipe's native code (TensorFlow Lite, absl, glog) writes to the terminal while a
# model starts: not ours to show (``-v`` shows them).
NATIVE_NOISE = re.compile(r"^(INFO: Created TensorFlow Lite|INFO: Initialized TensorFlow Lite|"
                          r"WARNING: All log messages before absl::InitializeLog|"
                          r"[IWE]\d{4} [\d:. ]+\s+\d+ \S+\.cc:\d+\])")
_NATIVE_LOCK = threading.Lock()


def _flush() -> None:
    if sys.stderr is not None and not sys.stderr.closed:
        sys.stderr.flush()


class NativeStderr:
    """A context for calls into native code that may write to file descriptor 2 (MediaPipe's
    TensorFlow Lite, absl and glog lines, some on the first frames, some on the first tracked
    frame). Inside it fd 2 is a temporary file, kept open between uses so a call costs two
    ``dup2``s; afterwards lines matching ``noise`` are logged at DEBUG and the rest written back
    to stderr (nothing is lost). With DEBUG enabled (``-v``) calls run as they are."""

    def __init__(self, noise: re.Pattern[str] = NATIVE_NOISE) -> None:
        self.noise = noise
        self._tmp: Optional[IO[bytes]] = None
        self._saved = -1

    def __enter__(self) -> NativeStderr:
        if logging.getLogger("edge_app").isEnabledFor(logging.DEBUG):
            return self
        _NATIVE_LOCK.acquire()
        try:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryFile()
            _flush()
            self._saved = os.dup(2)
            os.dup2(self._tmp.fileno(), 2)
        except BaseException:
            _NATIVE_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved < 0:
            return
        try:
            _flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = -1
            assert self._tmp is not None
            if self._tmp.tell():
                self._tmp.seek(0)
                text = self._tmp.read().decode("utf-8", "replace")
                self._tmp.seek(0)
                self._tmp.truncate()
                for line in text.splitlines():
                    if self.noise.match(line):
                        logging.getLogger(__name__).debug("native: %s", line)
                    elif line.strip() and sys.stderr is not None and not sys.stderr.closed:
                        sys.stderr.write(line + "\n")
                _flush()
        finally:
            _NATIVE_LOCK.release()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


@contextlib.contextmanager
def native_stderr(noise: re.Pattern[str] = NATIVE_NOISE) -> Iterator[None]:
    """One call into native code through a :class:`NativeStderr`."""
    quiet = NativeStderr(noise)
    try:
        with quiet:
            yield
    finally:
        quiet.close()
