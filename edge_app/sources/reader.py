"""A reader thread between a source and a consumer.

Live sources: only the newest frame is kept (a slow consumer skips stale frames, never sees
one twice) and a lost camera is reopened with exponential backoff. Finite sources (files,
folders, the unpaced simulator): every frame is handed over through a small bounded queue.
Errors raised in the thread are re-raised in the consumer. :meth:`stop` ends the thread
(stop event, join with a timeout) and releases the source.
"""
from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Deque, Iterator, Optional

from edge_app.sources.base import Frame, FrameSource, SourceLost

log = logging.getLogger(__name__)


class FrameReader:
    """Reads ``source`` in a daemon thread. Use as a context manager or call start()/stop()."""

    def __init__(self, source: FrameSource, drop: Optional[bool] = None, reconnect: bool = True,
                 backoff: float = 0.5, max_backoff: float = 8.0, queue_size: int = 2,
                 max_retries: Optional[int] = None) -> None:
        self.source = source
        self.drop = source.live if drop is None else drop
        self.reconnect = reconnect
        self.backoff, self.max_backoff, self.max_retries = backoff, max_backoff, max_retries
        self._frames: Deque[Frame] = collections.deque(maxlen=1 if self.drop else queue_size)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._eof = False
        self._last_id = -1
        self.frames_read = 0
        self.frames_dropped = 0
        self.reconnects = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FrameReader:
        """Open the source (errors surface here, in the caller) and start reading."""
        self.source.open()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and release the source; returns within about ``timeout`` seconds."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # A driver call is stuck; releasing under it can crash, so leave it to exit.
                log.warning("%s: reader did not stop within %.1f s; not releasing the device",
                            self.source.uri, timeout)
                return
        self.source.close()

    def __enter__(self) -> FrameReader:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- consumer side -------------------------------------------------------------------
    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next unseen frame; None at the end of a finite source (or on timeout).
        Raises the reader thread's error, if it failed."""
        with self._cond:
            self._cond.wait_for(
                lambda: bool(self._frames) or self._eof or self._error is not None
                or self._stop.is_set(), timeout)
            if self._frames:
                frame = self._frames.popleft()
                self._cond.notify_all()
                self._last_id = frame.id
                return frame
            if self._error is not None:
                raise self._error
            return None   # end of stream, stopped, or timed out

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    @property
    def finished(self) -> bool:
        """True once a finite source is exhausted and its frames consumed."""
        with self._cond:
            return self._eof and not self._frames

    # -- reader thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except SourceLost as exc:
                    if self.reconnect and self.source.live and self._reopen(exc):
                        continue
                    if self._stop.is_set():
                        break
                    raise
                if frame is None:
                    break
                self._put(frame)
        except BaseException as exc:   # handed to the consumer, who decides
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            return
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            self.frames_read += 1
            if self.drop:
                if self._frames:
                    self.frames_dropped += 1
            else:
                self._cond.wait_for(lambda: len(self._frames) < (self._frames.maxlen or 1)
                                    or self._stop.is_set())
            self._frames.append(frame)
            self._cond.notify_all()

    def _reopen(self, cause: BaseException) -> bool:
        """Reopen a lost live source with exponential backoff; False when retries run out."""
        delay, attempt = self.backoff, 0
        log.warning("%s; reopening", cause)
        while not self._stop.is_set():
            attempt += 1
            if self.max_retries is not None and attempt > self.max_retries:
                return False
            if self._stop.wait(delay):
                return False
            try:
                self.source.close()
                self.source.open()
            except Exception as exc:  # device still gone: wait longer
                log.warning("%s: reopen attempt %d failed (%s); next in %.1f s",
                            self.source.uri, attempt, exc, min(delay * 2, self.max_backoff))
                delay = min(delay * 2, self.max_backoff)
                continue
            self.reconnects += 1
            log.warning("%s: reopened after %d attempt(s)", self.source.uri, attempt)
            return True
        return False
