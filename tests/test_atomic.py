"""Atomic writes: a killed writer or a full disk never leaves a partial file or a lost label."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from edge_app.dataset.atomic import TMP_MARK, append_line, atomic_write_bytes
from edge_app.dataset.formats import read_dataset
from edge_app.dataset.info import summarize
from edge_app.dataset.writer import DatasetWriter
from edge_app.errors import DatasetError
from edge_app.tasks.spec import load_task

from helpers import HANG_GUARD, disk_full_after, enospc

KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from edge_app.dataset import atomic
    if sys.argv[2] == "fsync":
        os.fsync = lambda fd: time.sleep(60)         # killed before the rename
        chunk = 1 << 20
    else:
        chunk = 1                                     # killed in the middle of writing
    print("go", flush=True)
    atomic.atomic_write_bytes(sys.argv[1], b"N" * 5_000_000, chunk=chunk)
""")


@pytest.mark.parametrize("stage", ["write", "fsync"])
def test_killed_writer_leaves_old_file_whole(tmp_path, stage):
    target = tmp_path / "img.jpg"
    target.write_bytes(b"OLD")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(target), stage],
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"go"
    deadline = time.monotonic() + HANG_GUARD
    while not list(tmp_path.glob("*" + TMP_MARK + "*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"OLD"
    leftovers = list(tmp_path.glob(".*" + TMP_MARK + "*"))
    assert leftovers, "the interrupted temp file is what remains"


def test_interrupted_write_is_reported_not_read(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", load_task("thumbs"))
    writer.save(np.zeros((32, 32, 3), np.uint8), label="thumbs_up")
    (tmp_path / "ds" / "thumbs_up" / (".x.jpg" + TMP_MARK + "1234")).write_bytes(b"half")
    ds = read_dataset(tmp_path / "ds").verify()
    info = summarize(ds)
    assert info["images"] == 1
    assert any("unfinished write" in p for p in info["problems"])


def test_append_line_rolls_back_on_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "labels.csv"
    path.write_text("image,x\na.jpg,1\n")
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(OSError):
        append_line(path, "b.jpg,2")
    assert path.read_text() == "image,x\na.jpg,1\n"


def test_atomic_write_failure_removes_temp(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", ["thumbs", "face"])
def test_full_disk_keeps_what_was_saved(tmp_path, monkeypatch, task):
    spec = load_task(task)
    writer = DatasetWriter(tmp_path / "ds", spec)
    disk_full_after(monkeypatch, 2)
    labels = {"label": "thumbs_up"} if spec.classes else {"points": {"nose": (0.5, 0.5)}}
    image = np.full((40, 40, 3), 90, np.uint8)
    writer.save(image, **labels)
    writer.save(image, **labels)
    with pytest.raises(DatasetError, match="disk full.*2 image"):
        writer.save(image, **labels)
    ds = read_dataset(tmp_path / "ds").verify()
    assert len(ds.samples) == 2 and not ds.problems
    assert not summarize(ds)["problems"], "no orphan image, no half row"
