"""The studio without its web layer: one camera, the capture session (the capture tool's own
writer: atomic, in a thread), the training job, and live inference with the newest model.

Threads and their shutdown: the frame reader (owned here, stopped by :meth:`Studio.close`),
one worker that reads frames and either publishes them for capture or runs the live loop
(stopped through ``_stop``; the loop through ``_leave``), the dataset writer (drained on
close), and the training child process (stopped on close)."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edge_app.backends.registry import choose_backend
from edge_app.camera.check import CameraWatch
from edge_app.capture.session import CaptureSession, camera_check_skipped, camera_checker, capture_finder
from edge_app.dataset import edit
from edge_app.dataset.links import LINK_FIX, real_inside
from edge_app.errors import UserError, did_you_mean
from edge_app.model.info import load_model_info
from edge_app.opencv import cv2
from edge_app.runtime.collect import Collector
from edge_app.runtime.loop import Runner, run_loop
from edge_app.runtime.serve import shorten
from edge_app.sources import FrameReader, open_source
from edge_app.sources.base import Frame, FrameSource
from edge_app.studio.jobs import TrainingJob, check_mode
from edge_app.studio.review import LinkOut, Review
from edge_app.subject.stage import SubjectStage, stage_provider
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

BURST_FPS = 8.0         # shots a second while the burst button is held
BURST_HOLD = 1.5        # seconds a burst lasts without the page's keep-alive (a lost browser)
STREAM_FPS = 20.0       # the preview is encoded at most this often
MODES = ("capture", "infer")
NO_CAMERA = "none"
MESSAGE_SECONDS = 8.0


class Busy(UserError):
    """An action refused for now (409 Conflict): something else is using what it changes."""

    status = 409


class Studio:
    """Everything the page drives. Methods raise :class:`UserError` with one line to show."""

    def __init__(self, task: TaskSpec, source: str, data: Path, runs: Path,
                 train_args: Optional[List[str]] = None, provider: str = "auto",
                 width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, collected: Optional[Path] = None,
                 current: Optional[Path] = None) -> None:
        self.task, self.data, self.provider = task, Path(data), provider
        # --source none: no camera (it may be held by the service), only the Review view works.
        self.camera = source != NO_CAMERA
        self.source: FrameSource = open_source(source, width=width, height=height, fps=fps) \
            if self.camera else _NoCamera(NO_CAMERA)
        finder = capture_finder(task, self.source.has_truth) if self.camera else None
        self.session = CaptureSession(task, self.data, finder=finder)
        self.job = TrainingJob(task, self.data, Path(runs), train_args or [])
        self.review: Optional[Review] = None
        if collected is not None:
            self.review = Review(Path(collected), task, self.session.writer.writer, self.job,
                                 link=current)
        self.reader = FrameReader(self.source)
        self.mode = "capture"
        self._message = ("", 0.0)
        self.model: Optional[str] = None
        self.prediction: Optional[Dict[str, Any]] = None
        self._frame: Optional[Frame] = None
        self._jpeg: Optional[bytes] = None
        self._seq, self._last_encode = 0, 0.0
        self._cond = threading.Condition()
        # The session is driven from request threads and the worker: one at a time.
        self._lock = threading.RLock()
        # Held while a delete checks for a training run and moves the file, and while a run
        # starts: a training run reads the dataset as it was when it started.
        self._dataset_use = threading.Lock()
        self._stop, self._leave = threading.Event(), threading.Event()
        self._burst: Dict[str, Any] = {"label": None, "until": 0.0, "next": 0.0}
        self._live: Any = None   # (runner, subject stage) while inferring
        self._collector: Any = None   # with --collected: live inference keeps its hard frames
        # The page polls twice a second: list the dataset only after a save or a delete.
        self._recent: Any = (None, [])
        self._worker = threading.Thread(target=self._run, name="studio", daemon=True)
        self.watch: Any = None   # the camera check (edge_app.camera.check.CameraWatch)
        self._watch_note = "no camera"

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Studio:
        if self.camera:
            self._start_watch()
            self.reader.start()
            self._worker.start()
        return self

    def _start_watch(self, seconds: float = 30.0) -> None:
        """The camera check beside the preview, as in capture: a turn it finds is applied to
        the source, so the preview and every capture after it come upright."""
        self._watch_note = camera_check_skipped(self.source, seconds)
        if not self._watch_note:
            self.watch = CameraWatch(self.source, rate=30.0 if self.source.has_truth else 3.0,
                                     seconds=seconds, check=camera_checker(self.source))

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._leave.set()
        if self._worker.is_alive():
            self._worker.join(10)
        self.job.cancel()
        if self.review is not None:
            self.review.close()
        self.session.close()
        if self.camera:
            self.reader.stop()
        if self.watch is not None:
            self.watch.close()
        self._close_live()

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except UserError as exc:   # a lost camera, a model that fails: say so, keep serving
                self.say(str(exc))
                self.mode = "capture"
                self._stop.wait(1.0)

    def _step(self) -> None:
        if self.mode == "infer" and self._live is not None:
            self._infer()
            return
        frame = self.reader.get(timeout=0.2)
        if frame is None:
            return
        self._frame = frame
        if self.watch is not None:   # never waits: the check runs in its own thread
            self.watch.offer(frame.image, frame.truth)
        self._burst_tick(frame)
        self._publish(self._overlay(frame))

    def _infer(self) -> None:
        runner, subjects = self._live
        self._leave.clear()
        run_loop(self.reader, [runner], [_PageSink(self)], stop=self._leave, subjects=subjects,
                 collector=self._collector)
        if not self._leave.is_set():   # the source ended: stay on its last frame
            self._stop.wait(0.2)

    def _publish(self, image: np.ndarray, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_encode < 1.0 / STREAM_FPS:
            return
        self._last_encode = now
        ok, buf = cv2().imencode(".jpg", image, [cv2().IMWRITE_JPEG_QUALITY, 80])
        if ok:
            with self._cond:
                self._jpeg, self._seq = buf.tobytes(), self._seq + 1
                self._cond.notify_all()

    def latest_jpeg(self, after: int, timeout: float = 1.0) -> Any:
        """(sequence number, JPEG) of a frame newer than ``after``, or the current one after
        ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after, timeout)
            return self._seq, self._jpeg

    def _overlay(self, frame: Frame) -> np.ndarray:
        """The preview: while points are being placed, the frozen frame with them."""
        with self._lock:
            image = (self.session.frozen or frame).image.copy()
            points = dict(self.session.points)
        h, w = image.shape[:2]
        for name, (x, y) in points.items():
            p = (int(x * w), int(y * h))
            cv2().drawMarker(image, p, (0, 0, 255), cv2().MARKER_CROSS, 18, 2)
            cv2().putText(image, name, (p[0] + 6, p[1] - 6), cv2().FONT_HERSHEY_SIMPLEX, 0.5,
                          (0, 0, 255), 1, cv2().LINE_AA)
        return image

    # -- capture ----------------------------------------------------------------------------
    def _label(self, label: str) -> str:
        labels = self.session.labels
        if label in labels:
            return label
        # The did-you-mean only for a name of a plausible length: difflib is quadratic, and a
        # 50 MB "label" once held the event loop for seconds.
        plausible = len(label) <= 2 * max(len(n) for n in labels) + 8
        raise UserError("'{}' is not a {} of task '{}'{}".format(
            shorten(label), "point" if self.session.is_points else "class", self.task.name,
            did_you_mean(label, labels) if plausible else ""))

    def select(self, label: str) -> None:
        """Select a class (the simulator then shows it) or the next point to place."""
        with self._lock:
            self.session.select(self.session.labels.index(self._label(label)))
        if not self.session.is_points:
            self.source.request_label(label)

    def capture(self, label: str) -> None:
        """Save the current frame as ``label``."""
        self._need_capture_mode()
        if self.session.is_points:
            raise UserError("this task labels points: click on the image to place them")
        if self._frame is None:
            raise UserError("no frame from the camera yet")
        if self._stale(self._frame):
            raise UserError("the camera check just turned the picture upright: shoot again")
        self._need_checked_camera()
        with self._lock:
            queued = self.session.save_class(self._frame, self._label(label))
        if not queued:
            raise UserError("the writer is busy (disk slow?): shot skipped")
        self.say(f"saved one {label}")

    def _need_checked_camera(self) -> None:
        """Shots wait for the camera check: a shot taken before it turns the picture upright
        would be stored turned while every later one is upright."""
        if self.watch is not None and self.watch.status().get("state") == "checking":
            raise UserError("the camera check is still looking at the picture (up to 30 s; show "
                            "a face or an open hand): shoot once it says upright or turned")

    def burst(self, label: str, on: bool) -> None:
        """Start (or keep alive) or stop saving frames of ``label`` continuously."""
        self._need_capture_mode()
        if on:
            if self.session.is_points:
                raise UserError("bursts are for classes; place points by clicking")
            self._need_checked_camera()
            label = self._label(label)
            with self._lock:
                self._burst.update(label=label, until=time.monotonic() + BURST_HOLD)
        else:
            with self._lock:   # once this returns, no shot of the burst is still on its way
                self._burst["until"] = 0.0

    def _burst_tick(self, frame: Frame) -> None:
        b = self._burst
        with self._lock:   # decided and queued under the lock that stopping the burst takes
            now = time.monotonic()
            if b["label"] is None or now > b["until"] or now < b["next"] or self._stale(frame):
                return
            b["next"] = now + 1.0 / BURST_FPS
            try:
                self.session.save_class(frame, b["label"])
            except UserError as exc:   # a full disk: stop the burst, tell the page
                b["until"] = 0.0
                self.say(str(exc))

    def _stale(self, frame: Frame) -> bool:
        """A frame read before the camera check's correction (still turned): never saved
        beside the upright ones."""
        return int(getattr(frame, "rotation", 0)) != int(getattr(self.source, "total_rotation", 0))

    def place(self, name: str, x: float, y: float) -> bool:
        """Place point ``name`` at (x, y) in 0..1 on the (then frozen) frame; once every point
        is placed the sample is saved. True when saved."""
        self._need_capture_mode()
        if not self.session.is_points:
            raise UserError("this task has classes: use the class buttons")
        if self._frame is None:
            raise UserError("no frame from the camera yet")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise UserError(f"the point ({x}, {y}) is outside the image")
        s = self.session
        with self._lock:
            s.select(s.labels.index(self._label(name)))
            saved = s.place_point(self._frame, x, y)
            if not saved and len(s.points) == len(s.labels):
                saved = s.save_points()
        self.say("saved the points" if saved else f"placed {name}")
        self._publish(self._overlay(self._frame), force=True)
        return saved

    def save_points(self) -> None:
        with self._lock:
            saved = self.session.save_points()
        if not saved:
            raise UserError("no point placed yet: click on the image")
        self.say("saved the points")

    def clear_points(self) -> None:
        with self._lock:
            self.session.discard_points()

    def delete(self, folder: str, name: str) -> None:
        """Remove a sample (to the dataset's .deleted folder, where it can be taken back).
        Refused while a training run reads the dataset: it listed the files at its start."""
        writer = self.session.writer.writer
        with self._dataset_use:
            if self.job.running:
                raise Busy("training is using these images right now: delete this one when it "
                           "has finished (or press Stop first)")
            edit.remove(self.data, self.task, folder, name, lock=writer.lock)
        writer.recount()
        self._recent = (None, [])
        self.say(f"deleted {folder}/{name}")

    def sample_file(self, folder: str, name: str) -> Path:
        """The real path of sample ``folder/name``: a link that leads out of the dataset is
        refused (403), whatever it is named."""
        path = edit.sample_path(self.data, self.task, folder, name)
        real = real_inside(path, self.data)
        if real is None:
            log.warning("refused %s/%s: a link to a file outside the dataset (%s)", shorten(folder),
                        shorten(name), LINK_FIX)
            raise LinkOut(f"{shorten(folder)}/{shorten(name)} is a link to a file outside the dataset; "
                          f"it is not served ({LINK_FIX})")
        return real

    def _need_camera(self) -> None:
        if not self.camera:
            raise UserError("no camera here (--source none): only the Review view works; start "
                            "the studio with --source usb:0 (or another camera) to capture")

    def _need_review(self) -> Review:
        if self.review is None:
            raise UserError("no collected frames to review: start the studio with --collected DIR "
                            "(the folder edge-app run --collect DIR wrote)")
        return self.review

    def _need_capture_mode(self) -> None:
        self._need_camera()
        if self.mode != "capture":
            raise UserError("switch to capture first (live inference is on)")

    # -- training and inference -------------------------------------------------------------
    def _flush(self) -> None:
        """Wait (up to 10 s) for queued shots to reach the disk."""
        deadline = time.monotonic() + 10
        while self.session.writer.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        self.session.check()

    def train(self, mode: Optional[str] = None) -> None:
        """Train on what is saved now (waits for queued shots to reach the disk first)."""
        check_mode(mode)
        self._flush()
        if not any(self.session.counts.values()):
            raise UserError("the dataset is empty: capture some images first")
        with self._dataset_use:
            self.job.start(mode)
        self.say("training started")

    def set_mode(self, mode: str) -> None:
        """``capture`` or ``infer`` (live inference with the newest trained model)."""
        if mode not in MODES:
            raise UserError("mode '{}': choose {}".format(shorten(mode), " or ".join(MODES)))
        if mode == self.mode:
            return
        self._need_camera()
        if mode == "capture":
            self.mode = "capture"
            self._leave.set()
            return
        self._open_live()
        self.clear_points()
        self.mode = "infer"

    def _open_live(self) -> None:
        bundle = self.job.newest_bundle()
        if bundle is None:
            raise UserError("no trained model yet: press Train first")
        if self._live is not None and self.model == str(bundle):
            return
        self._close_live()
        info = load_model_info(str(bundle))
        backend, _ = choose_backend("auto", info)
        backend.warmup(info)
        subjects = None
        if info.subject:
            provider = stage_provider(self.provider, [info.plan.feature_schema])
            subjects = SubjectStage([info.subject], provider)
        self._live, self.model = (Runner(info, backend), subjects), str(bundle)
        self.prediction = None
        if self.review is not None:   # live inference collects its hard frames for review too
            self._collector = Collector(self.review.root)
            self._collector.add_model(info.name, info)

    def _close_live(self) -> None:
        if self._collector is not None:
            self._collector.close()
            self._collector = None
        if self._live is not None:
            runner, subjects = self._live
            runner.backend.close()
            if subjects is not None:
                subjects.close()
        self._live = None

    # -- review -----------------------------------------------------------------------------
    def review_confirm(self, model: str, name: str, label: Optional[str],
                       points: Optional[Dict[str, Any]]) -> str:
        """Confirm or correct a collected frame (see :meth:`Review.confirm`)."""
        review = self._need_review()
        with self._dataset_use:   # a training run reads the dataset as it was at its start
            if self.job.running:
                raise Busy("training is reading the dataset right now: confirm this frame when "
                           "it has finished")
            where = review.confirm(model, name, label, points)
        self._recent = (None, [])
        self.say(f"confirmed {name} ({where})")
        return where

    def review_skip(self, model: str, name: str) -> None:
        self._need_review().skip(model, name)

    def review_delete(self, model: str, name: str) -> None:
        self._need_review().delete(model, name)
        self.say(f"deleted {name} (kept in .deleted/)")

    def review_image(self, model: str, name: str) -> bytes:
        return self._need_review().image(model, name)

    def review_retrain(self, mode: Optional[str] = None) -> None:
        """Retrain on the dataset with the confirmed frames; compare, then switch if better."""
        review = self._need_review()
        check_mode(mode)
        review.need_torch()
        if not any(self.session.counts.values()):
            raise UserError("the dataset is empty: confirm some frames first")
        with self._dataset_use:
            review.retrain(mode, self._flush)
        self.say("retraining started")

    def review_switch(self) -> Dict[str, Any]:
        """Make the last retrained model current although it did not score better."""
        return self._need_review().switch()

    def review_rollback(self) -> Dict[str, Any]:
        """Point the current link back at the previous bundle."""
        back = self._need_review().rollback()
        self.say(f"rolled back to {Path(back).name}")
        return {"bundle": back}

    def review_state(self) -> Dict[str, Any]:
        if self.review is None:
            return {"available": False, "can_train": False, "items": [], "counts": {},
                    "compare": {"state": "idle"}}
        return dict(self.review.state(), available=True)

    # -- what the page polls ----------------------------------------------------------------
    def say(self, text: str) -> None:
        """A one-line message for the page (an action's result, or what went wrong)."""
        self._message = (text, time.monotonic())

    @property
    def message(self) -> str:
        """The last message, for MESSAGE_SECONDS."""
        text, when = self._message
        return text if time.monotonic() - when < MESSAGE_SECONDS else ""

    def _recent_samples(self) -> List[Dict[str, Any]]:
        key = self.session.writer.writer.saved
        if self._recent[0] != key:
            self._recent = (key, [r for r in edit.recent(self.data, self.task)   # no links out
                                  if real_inside(self.data / r["folder"] / r["name"], self.data)])
        return list(self._recent[1])

    def state(self) -> Dict[str, Any]:
        s = self.session
        with self._lock:
            placed = {k: list(v) for k, v in s.points.items()}
            selected = s.current
        return {"task": {"name": self.task.name, "kind": self.task.kind, "labels": list(s.labels),
                         "points": s.is_points},
                "mode": self.mode, "selected": selected, "counts": s.counts, "placed": placed,
                "pending": s.writer.pending, "recent": self._recent_samples(),
                "train": self.job.status(), "model": self.model, "prediction": self.prediction,
                "message": self.message, "source": self.source.describe(), "camera": self.camera,
                "review": self.review is not None, "camera_check": self._camera_check()}

    def _camera_check(self) -> Dict[str, Any]:
        """The camera check's state for the page ("skipped" with the reason when it does not run)."""
        if self.watch is None:
            return {"state": "skipped", "rotation": None, "line": self._watch_note, "fix": ""}
        return dict(self.watch.status())


class _NoCamera(FrameSource):
    """``--source none``: a studio without a camera (the Review view only)."""

    def open(self) -> None:
        pass

    def _grab(self) -> Any:
        return None

    def describe(self) -> str:
        return "no camera (review only)"


class _PageSink:
    """The live loop's output for the page: the newest annotated frame and result."""

    name, needs_frames, written, dropped, error = "page", True, 0, 0, None

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def submit(self, image: np.ndarray, record: Dict[str, Any]) -> None:
        results = record.get("results") or [None]
        self.studio.prediction = results[0]
        self.studio._publish(image)
        self.written += 1

    def close(self) -> None:
        pass
