"""Sources read through cv2.VideoCapture: USB (V4L2) and CSI cameras, files and streams."""
from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge_app.errors import SourceError
from edge_app.log import native_stderr
from edge_app.opencv import cv2, has_gstreamer, pip_opencv_distributions
from edge_app.sources.base import FrameSource, SourceLost


def _fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""

# What FFmpeg and OpenCV print while a capture opens: ``[mov,mp4,... @ 0x55..] moov atom not
# found``, ``[ WARN:0@0.1] global cap.cpp ...``.
CAPTURE_NOISE = re.compile(r"^(\[[\w,]+ @ 0x[0-9a-f]+\]|\[ ?(WARN|INFO|ERROR)[:\]])")


class CaptureSource(FrameSource):
    """Common part: open a cv2.VideoCapture, read frames, record the delivered mode."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._cap: Any = None

    def _open_capture(self) -> Any:
        raise NotImplementedError

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.uri}: could not be opened")

    def open(self) -> None:
        with native_stderr(CAPTURE_NOISE):   # FFmpeg's and OpenCV's own lines (old OpenCVs
            cap = self._open_capture()       # ignore OPENCV_FFMPEG_LOGLEVEL): ours is the one line
        if cap is None or not cap.isOpened():
            raise self._not_opened()
        self._cap = cap
        self._configure(cap)
        cv = cv2()
        self.info.width = int(cap.get(cv.CAP_PROP_FRAME_WIDTH))
        self.info.height = int(cap.get(cv.CAP_PROP_FRAME_HEIGHT))
        self.info.fps = float(cap.get(cv.CAP_PROP_FPS) or 0.0)
        self.info.fourcc = _fourcc_text(cap.get(cv.CAP_PROP_FOURCC))

    def _configure(self, cap: Any) -> None:
        """Ask for a mode before the first read (cameras only)."""

    def _grab(self) -> Optional[Tuple[np.ndarray, Dict[str, Any]]]:
        if self._cap is None:
            raise SourceError(f"{self.uri}: read before open()")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.live:
                raise SourceLost(f"{self.uri}: stopped delivering frames")
            return None
        return image, {}

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class V4L2Camera(CaptureSource):
    """A USB webcam: asks for MJPG (needed for 30 fps at 720p) and reports what it got."""

    live = True

    def __init__(self, uri: str, device: str, width: int = 640, height: int = 480,
                 fps: float = 30.0, fourcc: str = "MJPG") -> None:
        super().__init__(uri)
        self.device = device
        self.requested = (width, height, fps, fourcc)

    def _open_capture(self) -> Any:
        if not os.path.exists(self.device):
            return None
        cv = cv2()
        index = int(self.device.replace("/dev/video", "")) if self.device[10:].isdigit() else self.device
        return cv.VideoCapture(index, cv.CAP_V4L2)

    def _not_opened(self) -> SourceError:
        if not os.path.exists(self.device):
            found = sorted(glob.glob("/dev/video*"))
            return SourceError("{}: camera {} not found ({}); plug it in, or pick one with --source usb:N"
                               .format(self.uri, self.device,
                                       "cameras present: " + ", ".join(found) if found
                                       else "no /dev/video* devices at all"))
        return SourceError(f"{self.uri}: {self.device} exists but could not be opened; another program may hold it "
                           f"(fuser {self.device}) or you may lack permission (add yourself to the 'video' group)"
                           )

    def _configure(self, cap: Any) -> None:
        cv = cv2()
        width, height, fps, fourcc = self.requested
        cap.set(cv.CAP_PROP_FOURCC, cv.VideoWriter_fourcc(*fourcc))
        cap.set(cv.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv.CAP_PROP_FPS, fps)
        cap.set(cv.CAP_PROP_BUFFERSIZE, 1)   # newest frame, not a queue of stale ones

    def mismatch(self) -> str:
        """What the camera delivers that differs from what was asked, or ``""``."""
        width, height, fps, fourcc = self.requested
        i = self.info
        diffs = []
        if (i.width, i.height) != (width, height):
            diffs.append(f"{i.width}x{i.height} instead of {width}x{height}")
        if i.fps and abs(i.fps - fps) > 0.5:
            diffs.append(f"{i.fps:.0f} fps instead of {fps:.0f}")
        if i.fourcc and i.fourcc != fourcc:
            diffs.append(f"{i.fourcc} instead of {fourcc}")
        return "; ".join(diffs)


# nvvidconv's flip-method values as 2x2 maps of centred image coordinates (x right, y down).
FLIP_METHODS = {
    0: ((1, 0), (0, 1)),     # none
    1: ((0, 1), (-1, 0)),    # counterclockwise 90
    2: ((-1, 0), (0, -1)),   # rotate 180
    3: ((0, -1), (1, 0)),    # clockwise 90
    4: ((-1, 0), (0, 1)),    # horizontal flip (mirror)
    5: ((0, -1), (-1, 0)),   # upper-right diagonal
    6: ((1, 0), (0, -1)),    # vertical flip
    7: ((0, 1), (1, 0)),     # upper-left diagonal (transpose)
}
FLIP_HELP = ("0 none, 1 counterclockwise 90, 2 rotate 180, 3 clockwise 90, 4 horizontal flip, "
             "5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal")
ROTATE_TO_FLIP = {0: 0, 90: 3, 180: 2, 270: 1}   # clockwise turn -> flip-method


def flip_method(uri: str, flip: int = 0, rotate: int = 0) -> int:
    """nvvidconv's flip-method for ``?flip=`` (a mirror, or a turn given the old way) followed
    by ``?rotate=`` (clockwise); both turning the picture is refused: say it once."""
    if flip not in FLIP_METHODS:
        raise SourceError(f"{uri}: flip {flip} is not an nvvidconv flip-method; use {FLIP_HELP}")
    if not rotate:
        return flip
    if flip in (1, 2, 3):
        raise SourceError(f"{uri}: flip={flip} already turns the picture and rotate={rotate} turns it again; "
                          "give the turn once, as rotate=90|180|270 (keep flip= for mirroring: "
                          "4 horizontal, 6 vertical)")
    turn = np.array(FLIP_METHODS[ROTATE_TO_FLIP[rotate]])
    both = turn @ np.array(FLIP_METHODS[flip])   # the mirror first, then the turn
    return next(m for m, mat in FLIP_METHODS.items() if (np.array(mat) == both).all())


def csi_pipeline(sensor: int, width: int, height: int, fps: float, flip: int = 0) -> str:
    """GStreamer pipeline for a Jetson CSI camera through nvarguscamerasrc. The sensor mode is
    ``width`` x ``height``; a flip-method that turns by 90 degrees delivers ``height`` x
    ``width`` (asking nvvidconv for the unturned size would stretch the picture)."""
    out_w, out_h = (height, width) if flip in (1, 3, 5, 7) else (width, height)
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={int(round(fps))}/1, format=NV12 ! nvvidconv flip-method={flip} ! "
            f"video/x-raw, width={out_w}, height={out_h}, format=BGRx ! videoconvert ! "
            "video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false"
            )


class CSICamera(CaptureSource):
    """A Jetson CSI camera (Raspberry Pi v2, IMX219/IMX477) via GStreamer. ``?rotate=`` is done
    by nvvidconv (``flip-method``), not on the CPU."""

    live = True
    turns_in_hardware = True   # nvvidconv does ?rotate=; a later correct() is software

    def __init__(self, uri: str, sensor: int, width: int = 1280, height: int = 720,
                 fps: float = 30.0, flip: int = 0) -> None:
        super().__init__(uri)
        self.mode = (sensor, width, height, fps)
        self.flip = flip
        self.pipeline = csi_pipeline(sensor, width, height, fps, flip_method(uri, flip))

    def set_rotation(self, rotation: int) -> None:
        super().set_rotation(rotation)
        self.pipeline = csi_pipeline(*self.mode, flip=flip_method(self.uri, self.flip, self.rotate))


    def _open_capture(self) -> Any:
        if not has_gstreamer():
            pips = pip_opencv_distributions()
            raise SourceError(
                "{}: this OpenCV was built without GStreamer{}; on a Jetson remove pip's OpenCV "
                "(pip uninstall {}) so that JetPack's cv2 is used".format(
                    self.uri, " (pip: " + ", ".join(pips) + ")" if pips else "",
                    " ".join(p.split()[0] for p in pips) or "opencv-python"))
        cv = cv2()
        return cv.VideoCapture(self.pipeline, cv.CAP_GSTREAMER)

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.uri}: the CSI camera did not start; check the ribbon cable and that "
                           "nvargus-daemon runs (sudo systemctl restart nvargus-daemon)")


class VideoFile(CaptureSource):
    """A video file, read frame by frame (as fast as the consumer asks)."""

    def __init__(self, uri: str, path: str) -> None:
        super().__init__(uri)
        self.path = path

    def _open_capture(self) -> Any:
        return cv2().VideoCapture(self.path)

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.uri}: not a video OpenCV can decode (is the file complete? "
                           f"try: ffprobe {self.path})")


class Stream(CaptureSource):
    """A network stream (rtsp://, http://) through OpenCV's FFmpeg backend."""

    live = True

    def _open_capture(self) -> Any:
        cv = cv2()
        return cv.VideoCapture(self.uri, cv.CAP_FFMPEG)

    def _not_opened(self) -> SourceError:
        return SourceError(f"{self.uri}: stream did not open; check the address, the credentials and "
                           "that the camera is reachable")
