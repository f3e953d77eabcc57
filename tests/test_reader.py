"""The reader thread: newest frame only for live sources, every frame for files, errors in the
caller, reconnect with backoff, prompt shutdown."""
from __future__ import annotations

import threading
import time

import pytest

from edge_app.sources import FrameReader
from edge_app.sources.base import SourceLost

from helpers import HANG_GUARD, FakeSource, finishes, wait_for


def test_finite_source_delivers_every_frame_in_order():
    src = FakeSource(n=25)
    with FrameReader(src) as reader:
        frames = list(reader)
        assert reader.finished
    assert [f.id for f in frames] == list(range(25))
    assert src.closes == 1


def test_live_source_keeps_only_the_newest_frame():
    src = FakeSource(live=True, delay=0.001)
    seen = []
    with FrameReader(src) as reader:
        for _ in range(15):
            frame = reader.get(timeout=HANG_GUARD)
            seen.append(frame.id)
            time.sleep(0.02)   # a slow consumer
        dropped = reader.frames_dropped
    assert seen == sorted(set(seen)), "never the same frame twice, never out of order"
    assert seen[-1] - seen[0] > len(seen), "stale frames were skipped"
    assert dropped > 0


def test_error_in_thread_is_raised_in_caller():
    with FrameReader(FakeSource(n=100, fail_at=5)) as reader:
        got = [reader.get(timeout=HANG_GUARD).id for _ in range(5)]
        with pytest.raises(RuntimeError, match="decoder crashed"):
            reader.get(timeout=HANG_GUARD)
    assert got == [0, 1, 2, 3, 4]


def test_lost_camera_is_reopened_with_backoff():
    src = FakeSource(live=True, lose_at=5, reopen_failures=2, delay=0.002)
    with FrameReader(src, backoff=0.01, max_backoff=0.05) as reader:
        ids = []
        deadline = time.monotonic() + HANG_GUARD
        while len(ids) < 12 and time.monotonic() < deadline:
            frame = reader.get(timeout=HANG_GUARD)
            if frame is not None:
                ids.append(frame.id)
        assert reader.reconnects == 1
    assert len(ids) == 12 and ids == sorted(set(ids)), "frames resume after the reconnect"
    assert src.opens == 4, "first open, two failed reopens, one that worked"


def test_lost_camera_without_reconnect_raises():
    with FrameReader(FakeSource(live=True, lose_at=2), reconnect=False) as reader:
        with pytest.raises(SourceLost):
            for _ in range(10):
                reader.get(timeout=HANG_GUARD)


def test_stop_is_prompt_even_during_backoff():
    src = FakeSource(live=True, lose_at=0, reopen_failures=100)
    reader = FrameReader(src, backoff=3600.0, max_backoff=3600.0).start()   # an hour between tries
    wait_for(lambda: src.lost, "the lost camera")   # the reader then waits before reopening it
    reader.stop(timeout=HANG_GUARD)   # returns as soon as the thread ends: the backoff is cut short
    assert not any(t.name == "frame-reader" and t.is_alive() for t in threading.enumerate())


def test_stop_unblocks_a_waiting_consumer():
    reader = FrameReader(FakeSource(live=True, delay=3600)).start()   # the first frame in an hour
    got = []
    threading.Timer(0.1, reader.stop, kwargs={"timeout": 0.1}).start()
    assert finishes(lambda: got.append(reader.get())), "get() waited for a frame after stop()"
    assert got == [None]
