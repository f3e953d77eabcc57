"""A recording that survives SIGKILL and power loss.

A video file is only playable once its writer is closed (an MP4's index, the moov atom, is
written last), so a killed process used to lose the whole recording. Here frames go to short
segments beside the target (``x.mp4.parts/000001.mp4``, ...), each closed and fsynced after
``SEGMENT_SECONDS``: after a kill or a power cut every closed segment plays as it is, and at
most the last segment (about two seconds) is lost. A clean stop joins the segments into the
file asked for (``x.mp4``) and removes them.

Segments are written by the same ``cv2.VideoWriter`` call, codec and container as the final
file, so whichever backend OpenCV has (FFmpeg in pip wheels, GStreamer or FFmpeg in JetPack's
build) writes them. The join copies the coded frames when the segments are plain MP4/MOV files
(:mod:`edge_app.runtime.mp4join`, as fast as a file copy) and otherwise decodes and re-encodes
them through OpenCV.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from edge_app.errors import UserError
from edge_app.names import printable
from edge_app.opencv import cv2
from edge_app.runtime.mp4join import Mp4JoinError, join_mp4, sample_count

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 2.0
FOURCC = "mp4v"
# Recording stops with one line when the disk has less free space than this: OpenCV's writer
# reports no failed write (FFmpeg only logs it), so frames would go on counting as written.
MIN_FREE_BYTES = 8 << 20
MP4_SUFFIXES = (".mp4", ".mov", ".m4v")


def parts_folder(path: Path) -> Path:
    """Where the segments of the recording ``path`` are written while it runs."""
    return path.with_name(path.name + ".parts")


def check_record_path(path: str) -> Path:
    """Check ``--record PATH`` before anything starts: the folder exists and is writable, and
    OpenCV can write a video with that name (the extension picks the format). One line if not."""
    target = Path(path).expanduser()
    try:
        str(target).encode("utf-8")
    except UnicodeEncodeError:   # OpenCV takes names as UTF-8 and crashes on other bytes
        raise UserError(f"--record {printable(target)}: the name is not valid UTF-8 text; choose another")
    folder = target.parent
    if not folder.is_dir():
        raise UserError(f"--record {target}: folder {folder} does not exist; create it or record elsewhere"
                        )
    if target.is_dir():
        raise UserError("--record {}: is a folder; give a file name such as {}".format(
            target, target / "out.mp4"))
    if not os.access(str(folder), os.W_OK | os.X_OK):
        raise UserError(f"--record {target}: folder {folder} is not writable; record elsewhere")
    free = free_bytes(folder)
    if free < MIN_FREE_BYTES:
        raise UserError(f"--record {target}: the disk is full ({free // 1024} KiB free in {folder}); free "
                        "some space or record elsewhere")
    _probe(target)
    return target


def _probe(target: Path) -> None:
    """Open (and remove) a tiny video of the same format beside ``target``."""
    probe = target.with_name(f".{target.stem}.probe-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        writer = _open_writer(probe, 30.0, (64, 64))
        if writer is None:
            raise UserError("--record {}: OpenCV cannot write a '{}' video here; use a name "
                            "ending in .mp4 (or .avi)".format(target, target.suffix or "(none)"))
        writer.release()
    finally:
        _remove(probe)


def _open_writer(path: Path, fps: float, size: Tuple[int, int]) -> Any:
    """A VideoWriter for ``path``, or None when OpenCV cannot open one."""
    cv = cv2()
    writer = cv.VideoWriter(str(path), cv.VideoWriter_fourcc(*FOURCC), fps, size)
    if not writer.isOpened():
        writer.release()
        return None
    return writer


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def free_bytes(folder: Path) -> int:
    """Bytes free for this user on the disk holding ``folder``."""
    return int(shutil.disk_usage(str(folder)).free)


def fsync_path(path: Path, folder: bool = False) -> None:
    """Flush a closed file (or a folder's entries) to the disk: what a power cut keeps."""
    fd = os.open(str(path), os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside(parts: Path) -> Optional[Path]:
    """Move the segments a killed run left (the only copy of that recording) out of the way,
    under a name with their time; where they went, or None when there were none."""
    if not parts.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(parts.stat().st_mtime))
    aside = parts.with_name(f"{parts.name}-{stamp}")
    while aside.exists():
        aside = parts.with_name(f"{parts.name}-{stamp}-{uuid.uuid4().hex[:4]}")
    parts.rename(aside)
    log.warning("%s: segments of an interrupted recording moved to %s (each plays as it is)",
                parts, aside)
    return aside


class SegmentedRecorder:
    """Frames to ``path`` through segments closed every ``seconds``; :meth:`close` joins them.
    Not thread-safe: one thread (the recorder sink's) calls every method."""

    def __init__(self, path: Path, fps: float, seconds: float = SEGMENT_SECONDS) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.seconds = seconds
        self.parts = parts_folder(self.path)
        set_aside(self.parts)
        self.parts.mkdir()
        self.segments: List[Path] = []   # closed and fsynced
        self.frames = 0                  # frames handed to the writer, all segments
        self.saved = 0                   # frames in the closed segments (checked where MP4)
        self._in_segment = 0             # frames handed to the open segment
        self.size: Optional[Tuple[int, int]] = None
        self._writer: Any = None
        self._current: Optional[Path] = None   # the open segment
        self._opened = 0.0

    def write(self, frame: np.ndarray) -> None:
        """Add one BGR frame; the first one sets the video's size (others are resized to it)."""
        if self._writer is not None and time.monotonic() - self._opened >= self.seconds:
            self._close_segment()
        if self.size is None:
            self.size = (int(frame.shape[1]), int(frame.shape[0]))
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2().resize(frame, self.size)
        self._check_room()
        if self._writer is None:
            self._open_segment()
        self._writer.write(frame)
        self.frames += 1
        self._in_segment += 1

    def _check_room(self) -> None:
        """Stop, keeping what the open segment holds, once the disk is (nearly) full."""
        free = free_bytes(self.parts)
        if free >= MIN_FREE_BYTES:
            return
        if self._writer is not None:
            self._close_segment()
        raise UserError(f"{self.parts}: the disk is full ({free // 1024} KiB free); recording stopped after "
                        f"{self.saved} frame(s): free some space or record elsewhere")

    def tick(self) -> None:
        """Close the open segment once it is old enough, also when no frame comes (a stalled
        camera): what was written is then safe."""
        if self._writer is not None and time.monotonic() - self._opened >= self.seconds:
            self._close_segment()

    def _open_segment(self) -> None:
        assert self.size is not None
        path = self.parts / f"{len(self.segments) + 1:06d}{self.path.suffix}"
        self._writer = _open_writer(path, self.fps, self.size)
        if self._writer is None:
            raise UserError(f"{path}: cannot write a video here (folder removed, read-only or disk "
                            "full?)")
        self._current = path
        self._opened = time.monotonic()
        self._in_segment = 0

    def _close_segment(self) -> None:
        path = self._current
        assert path is not None
        self._writer.release()
        self._writer = None
        fsync_path(path)
        fsync_path(self.parts, folder=True)
        written, self._in_segment = self._in_segment, 0
        if path.suffix.lower() in MP4_SUFFIXES:   # the writer does not say when a write failed
            try:
                held = sample_count(path)
            except OSError:
                held = 0
            if held is not None and held != written:
                _remove(path)
                raise UserError(f"{path}: holds {held} of the {written} frame(s) written to it (disk full or "
                                f"removed?); recording stopped after {self.saved} frame(s)")
        self.segments.append(path)
        self.saved += written

    def close(self) -> int:
        """Close the last segment and join them all into the target; the frames it holds.
        On failure the segments stay (each playable) and the error names their folder."""
        if self._writer is not None:
            self._close_segment()
        if not self.segments:
            shutil.rmtree(str(self.parts), ignore_errors=True)
            return 0
        if len(self.segments) > 30:
            log.info("recording: joining %d s of video into %s", int(len(self.segments) * self.seconds),
                     self.path)
        try:
            joined = join_segments(self.segments, self.path, self.fps)
        except (OSError, UserError) as exc:
            raise UserError(f"{self.path}: could not join the recording ({exc}); its segments are in {self.parts}, "
                            "each playable")
        if joined != self.saved:
            raise UserError(f"{self.path}: joined {joined} of {self.saved} frames; the segments are kept in {self.parts}")
        shutil.rmtree(str(self.parts), ignore_errors=True)
        return joined


def join_segments(segments: List[Path], out: Path, fps: float) -> int:
    """Join closed segments into ``out`` (written beside it, then renamed over it); returns the
    frames it holds. Copies the coded frames where the segments allow, else re-encodes."""
    tmp = out.with_name(f".{out.stem}.joining-{uuid.uuid4().hex[:8]}{out.suffix}")
    try:
        frames = _copy_join(segments, tmp)
        if frames is None:
            frames = _reencode_join(segments, tmp, fps)
        fsync_path(tmp)
        os.replace(str(tmp), str(out))
        fsync_path(out.parent, folder=True)
    finally:
        _remove(tmp)
    return frames


def _copy_join(segments: List[Path], out: Path) -> Optional[int]:
    """The MP4 remux join, checked by reading the result back; None where it does not apply."""
    if out.suffix.lower() not in (".mp4", ".mov", ".m4v"):
        return None
    try:
        frames = join_mp4(segments, out)
    except Mp4JoinError as exc:
        log.debug("recording: segments re-encoded, not copied (%s)", exc)
        return None
    if not _reads_back(out, frames):
        log.debug("recording: the copied join does not read back; re-encoding")
        return None
    return frames


def _reads_back(path: Path, frames: int) -> bool:
    """Cheap check of a joined file: its frame count, and its first and last frames decode."""
    cv = cv2()
    cap = cv.VideoCapture(str(path))
    try:
        if not cap.isOpened() or int(cap.get(cv.CAP_PROP_FRAME_COUNT)) != frames:
            return False
        if not cap.read()[0]:
            return False
        cap.set(cv.CAP_PROP_POS_FRAMES, frames - 1)
        return bool(cap.read()[0])
    finally:
        cap.release()


def _reencode_join(segments: List[Path], out: Path, fps: float) -> int:
    """Decode every segment and encode the frames into ``out`` (any container OpenCV writes)."""
    cv = cv2()
    writer = None
    frames = 0
    try:
        for seg in segments:
            cap = cv.VideoCapture(str(seg))
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    if writer is None:
                        writer = _open_writer(out, fps, (frame.shape[1], frame.shape[0]))
                        if writer is None:
                            raise UserError(f"cannot write {out}")
                    writer.write(frame)
                    frames += 1
            finally:
                cap.release()
    finally:
        if writer is not None:
            writer.release()
    return frames


def count_frames(path: Path) -> int:
    """Frames OpenCV decodes from the video at ``path`` (0 when it cannot open it)."""
    cap = cv2().VideoCapture(str(path))
    frames = 0
    try:
        while cap.isOpened():
            ok, _ = cap.read()
            if not ok:
                break
            frames += 1
    finally:
        cap.release()
    return frames
