"""Scripted capture: ``--headless --count N --interval S`` with a fixed label or ground truth."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from edge_app.capture.session import CaptureSession
from edge_app.errors import UserError
from edge_app.sources.reader import FrameReader


@dataclass
class CaptureStats:
    saved: int
    seconds: float
    frames_seen: int
    ended_early: bool = False

    @property
    def rate(self) -> float:
        return self.saved / self.seconds if self.seconds > 0 else 0.0


def run_headless(reader: FrameReader, session: CaptureSession, count: int,
                 interval: float = 0.0, label: Optional[str] = None,
                 progress: bool = True, frame_timeout: float = 10.0) -> CaptureStats:
    """Save ``count`` frames, one every ``interval`` seconds, labelled ``label`` or from the
    source's ground truth. Nothing is dropped: with no preview to keep smooth, a busy writer
    makes this loop wait instead."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, desc="capturing", unit="img", leave=False)
    start = time.monotonic()
    next_due, queued, seen, ended = 0.0, 0, 0, False   # the first frame is always taken
    try:
        while queued < count:
            frame = reader.get(timeout=frame_timeout)
            if frame is None:
                if reader.finished:
                    ended = True
                    break
                raise UserError(f"{reader.source.uri}: no frame for {frame_timeout:.0f} s; is the camera delivering?")
            seen += 1
            if frame.rotation != reader.source.total_rotation:
                continue   # read before the camera check's correction: not upright
            if frame.timestamp < next_due:
                continue
            while True:
                ok = session.save_truth(frame) if label is None else session.save_class(frame, label)
                if ok:
                    break
                time.sleep(0.005)   # writer queue full: wait for it
            queued += 1
            next_due = max(next_due + interval, frame.timestamp) if interval else frame.timestamp
            if bar is not None:
                bar.update(1)
        session.close()
        session.check()
    finally:
        if bar is not None:
            bar.close()
    return CaptureStats(session.writer.saved, time.monotonic() - start, seen, ended)
