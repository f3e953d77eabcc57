"""Training progress, reported in one place: tqdm bars on the terminal (:class:`Bar`), epoch
lines through logging (:func:`epoch`), and the same as events for whoever watches besides the
terminal (the browser studio runs ``edge-app train --progress-json FILE`` and reads the file):
progress through each stage's images, and every epoch's loss and validation metrics."""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from edge_app.dataset.atomic import json_text
from edge_app.errors import UserError

log = logging.getLogger(__name__)

Listener = Callable[[Dict[str, Any]], None]
LISTENERS: List[Listener] = []


def emit(event: Dict[str, Any]) -> None:
    """Hand ``event`` to every listener; a failing listener never stops training."""
    for listener in list(LISTENERS):
        try:
            listener(event)
        except Exception:   # noqa: BLE001 - progress reporting is best effort
            pass


def epoch(record: Dict[str, Any], line: Optional[str] = None) -> None:
    """Report one epoch's record as an event, and ``line`` (if any) on the terminal: the head
    epochs of fast mode are many and quick, so only the callers of slow epochs pass a line.
    A loss that is not a finite number stops the training with one line (every loop reports
    here): what would follow is a model of NaN weights and metrics."""
    loss = record.get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        raise UserError(f"training stopped at epoch {record.get('epoch')}: the loss is {float(loss)}, not a "
                        "finite number; check the labels for huge or broken values, or lower --lr")
    if line:
        log.info(line)
    emit(dict(record, type="epoch"))


def to_jsonl(path: Path) -> Listener:
    """A listener appending one JSON line per event to ``path`` (flushed each time), and
    registered."""
    lock = threading.Lock()
    path = Path(path)

    def write(event: Dict[str, Any]) -> None:
        line = json_text(dict(event, time=round(time.time(), 3)), default=float)
        with lock, path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    LISTENERS.append(write)
    return write


class Bar:
    """A tqdm bar that also reports its progress as events (at most every 0.25 s)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=desc, unit="img", leave=False, disable=not enabled)
        self.total, self.desc, self.done, self._last = total, desc, 0, 0.0

    def update(self, n: int) -> None:
        self._bar.update(n)
        self.done += n
        now = time.monotonic()
        if LISTENERS and (now - self._last > 0.25 or self.done >= self.total):
            self._last = now
            emit({"type": "progress", "stage": self.desc, "done": self.done, "total": self.total})

    def set_postfix(self, **kw: Any) -> None:
        self._bar.set_postfix(**kw)

    def close(self) -> None:
        self._bar.close()
