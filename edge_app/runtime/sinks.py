"""Outputs of the live loop. Each runs in its own thread behind a bounded queue that drops
rather than stalls, so a slow disk or encoder never slows the loop. ``close`` drains what is
queued, stops the thread and releases the file (a recording is always closed properly)."""
from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edge_app.cv import cv2
from edge_app.errors import UserError


class ThreadedSink:
    """Base: ``submit`` never blocks; items beyond ``maxsize`` are dropped and counted."""

    _STOP = object()
    needs_frames = True   # False: only the per-frame record is used (no annotated image)

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=maxsize)
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
            item = self._queue.get()
            if item is self._STOP:
                break
            if self.error is None:
                try:
                    self.handle(*item)
                    self.written += 1
                except Exception as exc:   # reported by close(); the loop goes on
                    self.error = exc
        self.finish()

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Release the file; runs in the sink's thread after the last item."""

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(self._STOP)
        self._thread.join(timeout)


class VideoSink(ThreadedSink):
    """``--record out.mp4``: the annotated stream (mp4v), opened at the first frame's size."""

    def __init__(self, path: str, fps: float = 30.0) -> None:
        self.path, self.fps = path, fps
        self._writer: Any = None
        super().__init__("recorder", maxsize=16)

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        cv = cv2()
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv.VideoWriter(self.path, cv.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise UserError("{}: cannot write a video here (folder missing or read-only?)".format(self.path))
        self._writer.write(frame)

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.release()


class JsonLinesSink(ThreadedSink):
    """``--json-out FILE``: one line per frame with results, timings (and sim ground truth)."""

    needs_frames = False

    def __init__(self, path: str) -> None:
        try:
            self._fh = open(Path(path).expanduser(), "w", encoding="utf-8")
        except OSError as exc:
            raise UserError("--json-out {}: {}".format(path, exc.strerror))
        super().__init__("json-out", maxsize=4096)

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")

    def finish(self) -> None:
        self._fh.close()
