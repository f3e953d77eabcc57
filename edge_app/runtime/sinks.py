"""Outputs of the live loop. Each runs in its own thread behind a bounded queue that drops
rather than stalls, so a slow disk or encoder never slows the loop. ``close`` drains what is
queued, stops the thread and releases the file (a recording is always closed properly)."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edge_app.dataset.atomic import json_text
from edge_app.errors import UserError
from edge_app.runtime.recording import SEGMENT_SECONDS, SegmentedRecorder, check_record_path


class ThreadedSink:
    """Base: ``submit`` never blocks; items beyond ``maxsize`` are dropped and counted."""

    _STOP = object()
    needs_frames = True   # False: only the per-frame record is used (no annotated image)
    tick_seconds: Optional[float] = None   # call idle() this often while no item comes

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.written = 0
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((frame, record))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.tick_seconds)
            except queue.Empty:
                self._guarded(self.idle)
                continue
            if item is self._STOP:
                break
            if self._guarded(self.handle, *item):
                self.written += 1
        try:
            self.finish()
        except Exception as exc:   # reported like a failed write, never a thread traceback
            self.error = self.error or exc

    def _guarded(self, step: Any, *args: Any) -> bool:
        """Run ``step`` unless a step failed before; keep its error for close()."""
        if self.error is not None:
            return False
        try:
            step(*args)
            return True
        except Exception as exc:   # reported by close(); the loop goes on
            self.error = exc
            return False

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Runs every ``tick_seconds`` while no item comes (in the sink's thread)."""

    def finish(self) -> None:
        """Release the file; runs in the sink's thread after the last item."""

    def close(self, timeout: Optional[float] = 5.0) -> None:
        self._queue.put(self._STOP)
        self._thread.join(timeout)


class VideoSink(ThreadedSink):
    """``--record out.mp4``: the annotated stream (mp4v), opened at the first frame's size.
    Written as segments closed every two seconds (:mod:`edge_app.runtime.recording`), so a
    kill or a power cut loses at most the last two seconds; a clean stop joins them into
    ``out.mp4``."""

    def __init__(self, path: str, fps: float = 30.0, segment_seconds: float = SEGMENT_SECONDS) -> None:
        self.path, self.fps = path, fps
        self.tick_seconds = min(0.5, segment_seconds)
        self._recorder = SegmentedRecorder(check_record_path(path), fps, segment_seconds)
        super().__init__("recorder", maxsize=16)

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        self._recorder.write(frame)

    def idle(self) -> None:
        self._recorder.tick()

    def finish(self) -> None:
        try:
            self._recorder.close()
        finally:   # the frames the recording holds, not those handed to a full disk
            self.written = self._recorder.saved

    def close(self, timeout: Optional[float] = None) -> None:
        """Wait for the join, however long: the process must not end halfway through it."""
        super().close(timeout)


class JsonLinesSink(ThreadedSink):
    """``--json-out FILE``: one line per frame with results, timings (and sim ground truth)."""

    needs_frames = False

    def __init__(self, path: str) -> None:
        try:
            self._fh = open(Path(path).expanduser(), "w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--json-out {path}: {exc.strerror}")
        super().__init__("json-out", maxsize=4096)

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        self._fh.write(json_text(record) + "\n")

    def finish(self) -> None:
        self._fh.close()
