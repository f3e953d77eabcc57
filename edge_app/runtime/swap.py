"""A new model while the loop runs: ``--model`` given as a link (``runs/current``) to a bundle.

The studio's review (or a person: ``ln -sfn``) points the link at a new bundle; a background
thread here notices (it looks once a second), exports the bundle to ONNX if it has no
``model.onnx`` yet (``edge-app export`` in a child process, where the training extras are
installed), loads and warms up its backend (TensorRT builds its engine here), and only then
hands the ready model to the loop, which swaps it in between two frames. Frames keep flowing
the whole time; the old model is closed in this thread afterwards. A bundle that fails to
prepare is reported once and the running model stays.

The link itself is changed atomically (a new link renamed over the old one) and the bundle it
pointed to is kept as ``previous`` beside it, for a rollback (:func:`rollback`).

Threads and shutdown: one watcher thread per link, stopped and joined by :meth:`BundleSwap.close`
(a child export is waited for, at most its timeout)."""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, List, Optional

from edge_app.errors import UserError

log = logging.getLogger(__name__)

PREVIOUS = "previous"
POLL_SECONDS = 1.0
EXPORT_TIMEOUT = 600.0
CLOSE_WAIT = 10.0   # seconds close() waits for a preparation in progress


def is_link(spec: str) -> bool:
    """Whether ``--model spec`` is a link to a bundle folder (then the loop watches it)."""
    path = Path(spec).expanduser()
    return path.is_symlink() and path.is_dir()


def target(link: Path) -> Path:
    """Where ``link`` points now (resolved)."""
    return Path(os.path.realpath(str(link)))


def switch_link(link: Path, bundle: Path) -> Optional[Path]:
    """Point ``link`` at ``bundle`` atomically; the bundle it pointed to before becomes the
    ``previous`` link beside it (returned; None when there was none). Links are relative when
    both sit in one folder, so a copied runs folder keeps working."""
    link, bundle = Path(link), Path(bundle).resolve()
    if not (bundle / "bundle.json").is_file():
        raise UserError(f"{bundle}: not a bundle (no bundle.json); train one first")
    if link.exists() and not link.is_symlink():
        raise UserError(f"{link}: exists and is not a link; move it away so a link can take its "
                        "place")
    old = target(link) if link.is_symlink() else None
    _replace_link(link, bundle)
    if old is not None and old != bundle:
        _replace_link(link.parent / PREVIOUS, old)
    return old


def rollback(link: Path) -> Path:
    """Point ``link`` back at the ``previous`` bundle (and ``previous`` at the one it left)."""
    prev = Path(link).parent / PREVIOUS
    if not prev.is_symlink() or not prev.is_dir():
        raise UserError(f"{link}: nothing to roll back to (no previous bundle)")
    back = target(prev)
    switch_link(link, back)
    return back


def _replace_link(link: Path, bundle: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest = os.path.relpath(str(bundle), str(link.parent.resolve()))
    except ValueError:   # another drive (Windows): an absolute link
        dest = str(bundle)
    tmp = link.with_name(f".{link.name}.tmp-{uuid.uuid4().hex[:8]}")
    os.symlink(dest, str(tmp))
    os.replace(str(tmp), str(link))   # atomic: readers see the old link or the new one


def needs_export(bundle: Path) -> bool:
    """A bundle without its ONNX graph (fresh from training)."""
    return not (Path(bundle) / "model.onnx").is_file()


def can_export() -> bool:
    """Whether this machine has what ``edge-app export`` needs (torch, onnx)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx"))


def export_bundle(bundle: Path, stop: Optional[threading.Event] = None,
                  timeout: float = EXPORT_TIMEOUT) -> bool:
    """``edge-app export --model bundle`` in a child process at low priority (the loop keeps
    the CPU); True when ``model.onnx`` is there afterwards."""
    cmd = _low_priority() + [sys.executable, "-m", "edge_app", "export", "--model", str(bundle)]
    with open(str(Path(bundle) / "export.log"), "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    waited = 0.0
    while proc.poll() is None:
        if (stop is not None and stop.is_set()) or waited > timeout:
            proc.kill()
            proc.wait(5)
            return False
        try:
            proc.wait(0.2)
        except subprocess.TimeoutExpired:
            waited += 0.2
    return proc.returncode == 0 and not needs_export(bundle)


def _low_priority() -> List[str]:
    """``nice -n 10`` where the system has it. Not ``preexec_fn=os.nice``: the loop runs
    threads, and Python documents preexec_fn as unsafe in a threaded parent (it can
    deadlock the child before exec)."""
    nice = shutil.which("nice") if os.name == "posix" else None
    return [nice, "-n", "10"] if nice else []


class BundleSwap:
    """Watches ``link`` for model slot ``index`` of the loop. ``make_runner(bundle)`` loads and
    warms up a :class:`~edge_app.runtime.loop.Runner` for a bundle folder (in this thread);
    :meth:`take` hands the loop a ready one once."""

    def __init__(self, link: Path, index: int, make_runner: Callable[[Path], Any],
                 current: Optional[Path] = None, poll: float = POLL_SECONDS,
                 export: bool = True, running: Optional[Any] = None) -> None:
        self.link, self.index, self.make_runner = Path(link), index, make_runner
        # what the loop's subject stage was built for: a new model must need the same
        self.needs = None if running is None else _needs(running)
        self.current = current or target(self.link)
        self.poll, self.export = poll, export
        self.swaps = 0
        self.failed: List[str] = []
        self._ready: Optional[Any] = None
        self._retired: List[Any] = []
        self._tried: Optional[Path] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bundle-swap", daemon=True)

    def start(self) -> BundleSwap:
        self._thread.start()
        return self

    def take(self) -> Optional[Any]:
        """The new runner when one is ready (once), else None: cheap, called every frame."""
        if self._ready is None:
            return None
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def retire(self, runner: Any) -> None:
        """Close the runner the loop just replaced (in this thread, not the loop's)."""
        with self._lock:
            self._retired.append(runner)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._close_retired()
            try:
                self._check()
            except Exception as exc:   # a bad bundle never stops the loop; said once
                self._fail(str(exc) or type(exc).__name__)
            self._wake.wait(self.poll)
            self._wake.clear()
        self._close_retired()

    def _check(self) -> None:
        now = target(self.link) if self.link.is_symlink() or self.link.exists() else None
        if now is None or now == self.current or now == self._tried or self._ready is not None:
            return
        if not (now / "bundle.json").is_file():
            return   # a link to a bundle still being written: look again next time
        self._tried = now
        log.info("%s now points to %s: preparing it in the background", self.link, now.name)
        if self.export and needs_export(now) and can_export():
            if not export_bundle(now, self._stop):
                if self._stop.is_set():   # the loop ended first: nothing failed
                    return
                self._fail("{}: export to ONNX failed (see {})".format(now.name, now / "export.log"))
                return
        runner = self.make_runner(now)
        if self._stop.is_set():
            runner.backend.close()
            return
        if self.needs is not None and _needs(runner) != self.needs:
            runner.backend.close()
            self._fail(f"{now.name} reads {_shown(_needs(runner))} where the running model reads {_shown(self.needs)}; the loop's subject stage "
                       "was built for the running one: restart the loop to run it")
            return
        with self._lock:
            self._ready = runner
        self.current = now
        self.swaps += 1
        log.info("%s ready: swapped in at the next frame (previous bundle kept for a rollback)",
                 now.name)

    def _fail(self, why: str) -> None:
        self.failed.append(why)
        log.warning("model link %s: %s; the running model stays", self.link, why)

    def _close_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for runner in retired:
            try:
                runner.backend.close()
            except Exception:   # releasing an old model is best effort
                pass

    def close(self) -> Optional[Any]:
        """Stop watching; returns a runner that was ready but never taken (for its owner to
        close), else None."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            # an export child is killed on stop; an engine build cannot be interrupted, so
            # the (daemon) thread is left to it rather than holding the exit for minutes
            self._thread.join(CLOSE_WAIT)
            if self._thread.is_alive():
                log.info("%s: the model being prepared is abandoned", self.link)
        with self._lock:
            left, self._ready = self._ready, None
        return left


def _needs(runner: Any) -> Any:
    """The subject kind and landmark schema a runner's model reads (None, None: the frame)."""
    info = runner.info
    return (getattr(info, "subject", None), getattr(getattr(info, "plan", None), "feature_schema", None))


def _shown(needs: Any) -> str:
    subject, schema = needs
    return "the whole frame" if not subject else "{} ({})".format(subject, schema or "crop")


def runner_maker(name: str, load: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """``make_runner`` for :class:`BundleSwap`: ``load(bundle)`` gives a loaded Runner whose
    model keeps the link's ``name`` (its collect folder and JSON lines stay the same)."""
    def make(bundle: Path) -> Any:
        runner = load(bundle)
        runner.info = dataclasses.replace(runner.info, name=name)
        runner.version = bundle.name
        return runner
    return make
