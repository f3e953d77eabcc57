"""The capture tool's OpenCV window: live preview, class keys, clicks for points, burst."""
from __future__ import annotations

import time
from typing import Any, List, Optional

import numpy as np

from edge_app.capture.session import CaptureSession
from edge_app.opencv import cv2
from edge_app.sources.base import Frame
from edge_app.sources.reader import FrameReader

HELP_CLASSES = "1-9/Tab: class  Space: save (hold: burst)  a: accept suggestion  b: burst  q/Esc: quit"
HELP_CHECK = "camera check: show a face or an open hand  k: skip  q/Esc: quit"
HELP_POINTS = ("1-9/Tab: point  click: place  right-click: remove  a: take suggested points  "
               "Space/Enter: save  Backspace: discard  q: quit")
SUGGEST_EVERY = 3   # frames between landmark suggestions (the detector costs tens of ms)
KEY_ESC, KEY_TAB, KEY_ENTER, KEY_BACKSPACE = 27, 9, 13, 8


def draw_suggestion(out: np.ndarray, suggestion: Any, scale: float) -> None:
    """Landmarks as dots, suggested points as hollow circles, the suggested label at the top
    right: shown only, until the user presses 'a'."""
    cv = cv2()
    h, w = out.shape[:2]
    if suggestion.subject.landmarks is not None:
        for x, y in suggestion.subject.landmarks[:64]:
            cv.circle(out, (int(x), int(y)), 2, (255, 200, 0), -1, cv.LINE_AA)
    for name, (x, y) in suggestion.points.items():
        cv.circle(out, (int(x * w), int(y * h)), int(10 * scale / 0.6), (0, 255, 255), 2, cv.LINE_AA)
    if suggestion.text:
        cv.putText(out, suggestion.text + " (a)", (w - int(330 * scale / 0.6), int(30 * scale / 0.6)),
                   cv.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 255), 2, cv.LINE_AA)


def draw_overlay(image: np.ndarray, session: CaptureSession, burst: bool = False,
                 message: str = "", suggestion: Any = None, help_text: Optional[str] = None) -> np.ndarray:
    """The preview with the current label, the counts, placed points and key help."""
    cv = cv2()
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.45, min(w, h) / 900.0)
    line = int(28 * scale / 0.6)
    cv.rectangle(out, (0, 0), (w, line * (len(session.labels) + 1) + 8), (0, 0, 0), -1)
    counts = session.counts
    for i, name in enumerate(session.labels):
        selected = i == session.index
        text = "{}{} {}: {}".format(">" if selected else " ", i + 1 if i < 9 else " ", name,
                                    counts.get(name, 0))
        color = (0, 255, 255) if selected else (230, 230, 230)
        cv.putText(out, text, (8, line * (i + 1)), cv.FONT_HERSHEY_SIMPLEX, scale, color,
                   2 if selected else 1, cv.LINE_AA)
    for name, (x, y) in session.points.items():
        px, py = int(x * w), int(y * h)
        cv.drawMarker(out, (px, py), (0, 0, 255), cv.MARKER_CROSS, int(24 * scale / 0.6), 2)
        cv.putText(out, name, (px + 6, py - 6), cv.FONT_HERSHEY_SIMPLEX, scale * 0.8,
                   (0, 0, 255), 1, cv.LINE_AA)
    if suggestion is not None:
        draw_suggestion(out, suggestion, scale)
    status = []
    if burst:
        status.append("BURST")
    if session.writer.pending:
        status.append(f"saving {session.writer.pending}")
    if message:
        status.append(message)
    help_text = help_text or (HELP_POINTS if session.is_points else HELP_CLASSES)
    cv.rectangle(out, (0, h - 2 * line), (w, h), (0, 0, 0), -1)
    cv.putText(out, "  ".join(status), (8, h - line - 4), cv.FONT_HERSHEY_SIMPLEX, scale,
               (0, 200, 255), 1, cv.LINE_AA)
    cv.putText(out, help_text, (8, h - 8), cv.FONT_HERSHEY_SIMPLEX, scale * 0.7, (200, 200, 200),
               1, cv.LINE_AA)
    return out


class CaptureWindow:
    """Runs the preview loop; key and mouse handling are methods so tests can drive them."""

    def __init__(self, reader: FrameReader, session: CaptureSession, interval: float = 0.2,
                 suggester: Any = None, watch: Any = None) -> None:
        self.reader = reader
        self.session = session
        # The camera check (edge_app.camera.check.CameraWatch): nothing is saved until it has
        # decided, so every image of the session is turned alike.
        self.watch = watch
        self.suggester = suggester
        self.suggestion: Any = None
        self._seen = 0
        self.interval = interval
        self.burst = False
        self.message = ""
        self.frame: Optional[Frame] = None
        self.name = f"edge-app capture: {session.task.name}"
        self._clicks: List[Any] = []

    def on_mouse(self, event: int, x: int, y: int, flags: int, param: Any) -> None:
        self._clicks.append((event, x, y))   # handled in the loop's thread

    def handle_click(self, event: int, x: int, y: int) -> None:
        cv = cv2()
        frame = self.session.frozen or self.frame
        if frame is None or not self.session.is_points or self.checking:
            return
        h, w = frame.image.shape[:2]
        if event == cv.EVENT_LBUTTONDOWN:
            if self.session.place_point(frame, x / w, y / h):
                self.message = "saved"
        elif event == cv.EVENT_RBUTTONDOWN and self.session.points:
            nearest = min(self.session.points, key=lambda n: np.hypot(
                self.session.points[n][0] * w - x, self.session.points[n][1] * h - y))
            self.session.remove_point(nearest)

    @property
    def checking(self) -> bool:
        """Whether the camera check still runs (saving waits)."""
        return self.watch is not None and not self.watch.done

    def update_check(self, frame: Frame) -> None:
        """Offer the frame to the camera check; once it decides, say what it found."""
        if self.watch is None:
            return
        if self.watch.done:
            status = self.watch.status()
            self.message = "camera check: {}".format(status["line"])[:160]
            self.watch.close()
            self.watch = None
            self.frame = None   # a frame from before a correction is not shown or saved
            return
        self.watch.offer(frame.image, frame.truth)

    def handle_key(self, key: int) -> bool:
        """Act on one key press; False means quit."""
        s = self.session
        if key in (ord("q"), KEY_ESC):
            return False
        if self.checking and key == ord("k"):
            self.watch.close()
            self.watch = None
            self.message = "camera check skipped: images are saved as the camera delivers them"
            return True
        if self.checking and key in (ord(" "), KEY_ENTER, 10, ord("a"), ord("b")):
            self.message = "saving waits for the camera check (k: skip)"
            return True
        if ord("1") <= key <= ord("9") and s.select(key - ord("1")):
            self._pose()
        elif key == KEY_TAB or key == ord("]"):
            s.step(1)
            self._pose()
        elif key == ord("["):
            s.step(-1)
            self._pose()
        elif key == ord("b") and not s.is_points:
            self.burst = not self.burst
        elif key == ord("a"):
            frame = s.frozen or self.frame
            if self.suggestion is None or frame is None:
                self.message = "no suggestion (no subject found)"
            else:
                self.message = s.accept(frame, self.suggestion)
        elif key in (ord(" "), KEY_ENTER, 10):
            self._save_now(rate_limited=key == ord(" "))
        elif key in (KEY_BACKSPACE, 127) and s.is_points:
            s.discard_points()
        return True

    def update_suggestion(self, frame: Frame) -> None:
        """Every few frames, what the landmarks suggest (not while points are being placed)."""
        self._seen += 1
        if self.suggester is None or self.session.frozen is not None or self._seen % SUGGEST_EVERY:
            return
        self.suggestion = self.suggester.suggest(frame.image, frame.truth)

    def _pose(self) -> None:
        if not self.session.is_points:
            self.reader.source.request_label(self.session.current)

    def _save_now(self, rate_limited: bool) -> None:
        s = self.session
        if s.is_points:
            self.message = "saved" if s.save_points() else "click to place points first"
        elif self.frame is not None:
            # A held key repeats: save at most once per interval (hold-to-burst).
            if rate_limited and time.monotonic() - s.last_save < self.interval:
                return
            self.message = "saved" if s.save_class(self.frame) else "writer busy: shot skipped"

    def run(self) -> None:
        """Show the preview until the user quits or the source ends."""
        cv = cv2()
        cv.namedWindow(self.name, cv.WINDOW_AUTOSIZE)
        cv.setMouseCallback(self.name, self.on_mouse)
        self._pose()
        try:
            while True:
                frame = self.reader.get(timeout=0.05)
                if frame is None and self.reader.finished:
                    break
                if frame is not None and frame.rotation == self.reader.source.total_rotation:
                    self.frame = frame
                    self.update_check(frame)
                    self.update_suggestion(frame)
                while self._clicks:
                    self.handle_click(*self._clicks.pop(0))
                self.session.check()
                if self.burst and self.frame is not None and not self.checking and \
                        time.monotonic() - self.session.last_save >= self.interval:
                    self.session.save_class(self.frame)
                shown = (self.session.frozen or self.frame)
                if shown is not None:
                    message = self.watch.status()["line"] if self.checking else self.message
                    cv.imshow(self.name, draw_overlay(shown.image, self.session, self.burst,
                                                      message, self.suggestion,
                                                      HELP_CHECK if self.checking else None))
                key = cv.waitKey(1) & 0xFF
                if key != 0xFF and not self.handle_key(key):
                    break
        finally:
            cv.destroyWindow(self.name)
