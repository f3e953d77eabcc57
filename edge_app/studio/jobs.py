"""The studio's training run: ``edge-app train`` in a child process (its own session, so the
page stays responsive and a stop really stops it), followed through the JSON lines it writes
with ``--progress-json``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from edge_app.errors import UserError, one_line
from edge_app.tasks.spec import TaskSpec

CURVE_KEYS = ("accuracy", "rmse")   # the validation metric drawn, by task kind
MODES = (None, "fast", "full", "auto")


def check_mode(mode: Optional[str]) -> None:
    """Refuse a training mode that ``edge-app train --mode`` does not have."""
    if mode not in MODES:
        shown = mode if len(str(mode)) <= 40 else str(mode)[:40] + "..."
        raise UserError(f"mode {shown!r}: choose fast, full or auto")


class TrainingJob:
    """At most one training run at a time; each writes a new bundle under ``runs``."""

    def __init__(self, task: TaskSpec, data: Path, runs: Path, extra_args: List[str]) -> None:
        self.task, self.data, self.runs, self.extra = task, Path(data), Path(runs), list(extra_args)
        self.proc: Optional[subprocess.Popen] = None
        self.out: Optional[Path] = None
        self.started = 0.0
        self._reset()

    def _reset(self) -> None:
        self.events_offset = 0   # bytes of progress.jsonl already taken
        self.stage: Dict[str, Any] = {}
        self.curve: List[Dict[str, Any]] = []
        self.error = ""
        self.result: Dict[str, Any] = {}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, mode: Optional[str] = None) -> Path:
        """Start training on the dataset as it is now; the bundle folder it will write."""
        if self.running:
            raise UserError("training is already running; wait for it or stop it")
        check_mode(mode)
        self._reset()
        self.runs.mkdir(parents=True, exist_ok=True)
        self.out = self.runs / time.strftime("%Y%m%d-%H%M%S")
        self.out.mkdir(parents=True, exist_ok=True)
        task = self.task.path or self.task.name
        cmd = [sys.executable, "-m", "edge_app", "train", "--task", str(task), "--data", str(self.data),
               "--out", str(self.out), "--no-progress", "--progress-json", str(self._events())]
        cmd += (["--mode", mode] if mode else []) + self.extra
        log = (self.out / "train.log").open("w", encoding="utf-8")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        finally:
            log.close()
        self.started = time.time()
        return self.out

    def _events(self) -> Path:
        assert self.out is not None
        return self.out / "progress.jsonl"

    def status(self) -> Dict[str, Any]:
        """What the page shows: state, current stage, the metric curve, the bundle or the error."""
        if self.proc is None or self.out is None:
            return {"state": "idle"}
        self._read_events()
        code = self.proc.poll()
        state = "running" if code is None else ("done" if code == 0 and self.result else "failed")
        out: Dict[str, Any] = {"state": state, "bundle": str(self.out), "stage": self.stage,
                               "curve": self.curve, "seconds": round(time.time() - self.started, 1)}
        if state == "failed":
            out["error"] = one_line(self.error, 300) if self.error else self._failure(code)
        if state == "done":
            out["result"] = self.result
        return out

    def _read_events(self) -> None:
        path = self._events()
        if not path.is_file():
            return
        with path.open("rb") as fh:
            fh.seek(self.events_offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1   # a line still being written is read next time
        self.events_offset += end
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            try:
                self._take(json.loads(line))
            except ValueError:
                continue

    def _take(self, event: Dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "progress":
            self.stage = {k: event[k] for k in ("stage", "done", "total") if k in event}
        elif kind == "epoch":
            val = event.get("val") or {}
            metric = next((k for k in CURVE_KEYS if k in val), None)
            self.curve.append({"epoch": event.get("epoch"), "loss": event.get("loss"),
                               "metric": metric, "value": val.get(metric) if metric else None})
        elif kind == "done":
            self.result = {k: event.get(k) for k in ("bundle", "input", "metrics")}
        elif kind == "error":
            self.error = str(event.get("message", ""))

    def _failure(self, code: Optional[int]) -> str:
        """Why a run ended without its own error event, for the page: its last line when that
        is one of ours (``error: ...``), never a traceback's raw exception text."""
        assert self.out is not None
        log = self.out / "train.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if "Traceback (most recent call last)" in text:
            return f"training stopped on an unexpected error; the details are in {log}"
        if lines:
            return one_line(lines[-1], 300)
        return f"training stopped (exit {code})"

    def cancel(self) -> bool:
        """Stop a running training (its whole process group); True if one was running."""
        if not self.running:
            return False
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        self.error = "stopped from the page"
        return True

    def newest_bundle(self) -> Optional[Path]:
        """The newest finished bundle under ``runs`` (this run's or an earlier session's)."""
        if not self.runs.is_dir():
            return None
        done = sorted((p for p in self.runs.iterdir() if (p / "bundle.json").is_file()),
                      key=lambda p: p.stat().st_mtime)
        return done[-1] if done else None
