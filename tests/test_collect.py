"""Hard-example collection (edge-app run --collect): which frames are kept and why, the
rate limit, the folder layout, the size cap (oldest first), and that the loop never waits on
the writer; plus the simulator's fixed rooms that stage "trained here, deployed there"."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from edge_app.model.results import ClassResult, NoSubject, PointsResult
from edge_app.runtime.collect import (
    COLLECTED,
    MODEL_FILE,
    Collector,
    CollectPolicy,
    ModelCollector,
    folder_name,
    read_lines,
    uncertainty,
)

from helpers import HANG_GUARD, FakeBackend, FakeSource, finishes

LABELS = ("up", "down")


def _cls(a, b):
    return ClassResult(LABELS, np.array([a, b], np.float32))


def _pts(x, y):
    return PointsResult(("nose",), np.array([[x, y]], np.float32))


def _keep_all(**kw):
    return CollectPolicy(min_interval=0.0, drift_rate=0.0, **kw)


def test_each_reason_is_recognised():
    m = ModelCollector(_keep_all())
    assert m.reason(_cls(0.95, 0.05), 0.0) is None, "a sure answer is not kept"
    assert m.reason(_cls(0.55, 0.45), 1.0) == "unsure", "a small margin"
    assert m.reason(_cls(0.05, 0.95), 2.0) is None
    assert m.reason(_cls(0.95, 0.05), 3.0) == "flip", "up, down, up within the window"
    assert m.reason(NoSubject("hand"), 4.0) == "lost", "the subject was there and is gone"
    assert m.reason(NoSubject("hand"), 5.0) is None, "only the moment it is lost"
    p = ModelCollector(_keep_all())
    assert p.reason(_pts(0.5, 0.5), 0.0) is None
    assert p.reason(_pts(0.51, 0.5), 1.0) is None, "a small move"
    assert p.reason(_pts(0.7, 0.5), 2.0) == "jump"
    assert m.kept["unsure"] == m.kept["flip"] == m.kept["lost"] == 1 and p.kept["jump"] == 1


def test_rate_limit_and_random_drift_sample():
    m = ModelCollector(CollectPolicy(min_interval=1.0, drift_rate=0.0))
    got = [m.reason(_cls(0.5, 0.5), t * 0.1) for t in range(30)]   # 3 s of unsure frames
    assert sum(g == "unsure" for g in got) == 3 and m.limited == 27
    d = ModelCollector(CollectPolicy(min_interval=0.0, drift_rate=0.1), seed=1)
    kept = [d.reason(_cls(0.99, 0.01), float(t)) for t in range(2000)]
    assert 120 < kept.count("drift") < 280, "about one in ten sure frames, at random"


def test_uncertainty_orders_frames():
    assert uncertainty(NoSubject("hand")) == 1.0
    assert uncertainty(_cls(0.5, 0.5)) > uncertainty(_cls(0.7, 0.3)) > uncertainty(_cls(0.99, 0.01))
    assert folder_name("../evil name") == "evil_name" and folder_name("") == "model"


class _Info:
    def __init__(self, task, bundle=None):
        self.task, self.bundle = task, bundle

    def describe_input(self):
        return "32x32"


class _Frame:
    def __init__(self, i, h=48, w=64, truth=None):
        self.image = np.full((h, w, 3), i % 255, np.uint8)
        self.id, self.truth = i, truth


def test_kept_frames_are_written_with_their_line(tmp_path):
    from edge_app.tasks.spec import load_task

    c = Collector(tmp_path, _keep_all())
    folder = c.add_model("thumbs run", _Info(load_task("thumbs")))
    sub = {"kind": "hand", "box": [0.1, 0.2, 0.5, 0.6]}
    truth = {"label": "thumbs_up"}
    assert c.observe(_Frame(1, truth=truth), ["thumbs run"], [_cls(0.5, 0.5)], [sub]) == 1
    assert c.observe(_Frame(2), ["thumbs run"], [_cls(0.99, 0.01)], [sub]) == 0
    c.close()
    rows = read_lines(tmp_path / folder / COLLECTED)
    assert len(rows) == 1
    row = rows[0]
    assert row["reason"] == "unsure" and row["model"] == "thumbs run" and row["subject"] == sub
    assert row["prediction"]["scores"] == {"up": 0.5, "down": 0.5} and row["truth"] == truth
    assert (tmp_path / folder / row["file"]).stat().st_size > 100
    meta = json.loads((tmp_path / folder / MODEL_FILE).read_text())
    assert meta["task"]["name"] == "thumbs" and meta["labels"] == ["thumbs_up", "thumbs_down"]
    assert not list((tmp_path / folder).glob(".*part*")), "no temp file left"


def test_size_cap_drops_the_oldest_first(tmp_path):
    from edge_app.tasks.spec import load_task

    c = Collector(tmp_path, _keep_all(max_bytes=6000))
    folder = c.add_model("m", _Info(load_task("thumbs")))
    rng = np.random.default_rng(0)
    for i in range(40):
        f = _Frame(i)
        f.image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)   # noise: ~2-5 KB each
        c.observe(f, ["m"], [_cls(0.5, 0.5)], [None])
        c.writer.close() if i == 39 else time.sleep(0.002)
    rows = read_lines(tmp_path / folder / COLLECTED)
    files = sorted(p.name for p in (tmp_path / folder).glob("*.jpg"))
    total = sum((tmp_path / folder / n).stat().st_size for n in files)
    assert total <= 6000 and 0 < len(rows) < 40
    assert sorted(r["file"] for r in rows) == files, "lines and images stay paired"
    assert max(r["frame"] for r in rows) == 39, "the newest is kept"
    assert c.stats().removed == 40 - len(rows)


def test_loop_collects_in_its_own_stage_and_never_waits_for_the_disk(tmp_path, monkeypatch):
    from edge_app.model.info import ModelInfo
    from edge_app.runtime.collect import CollectFolder
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.sources import FrameReader
    from edge_app.tasks.spec import load_task

    release = threading.Event()
    slow_save = CollectFolder.save

    def stuck(self, image, record):   # a disk that hangs until the loop has ended
        release.wait(HANG_GUARD)
        return slow_save(self, image, record)

    monkeypatch.setattr(CollectFolder, "save", stuck)
    info = ModelInfo("m", load_task("thumbs"), (16, 16), None, None, "scores", None)
    c = Collector(tmp_path, _keep_all(), queue_size=4)
    c.add_model("m", info)
    ran = {}

    def loop():
        with FrameReader(FakeSource(n=300)) as reader:
            ran["stats"] = run_loop(reader, [Runner(info, FakeBackend((0.5, 0.5)))], collector=c)

    ended = finishes(loop)   # the writer is stuck until release: a loop that waited would hang
    release.set()
    c.close()
    assert ended, "the loop ran on while the writer was stuck"
    stats = ran["stats"]
    assert stats.frames == 300 and "collect" in stats.stages_ms
    s = c.stats()
    assert s.written == 5 and s.dropped == 295, "one in the writer, four queued, the rest dropped"


def test_simulator_holds_background_and_lighting_fixed():
    from edge_app.sources.sim import SimSource
    from edge_app.tasks.spec import load_task

    def means(**kw):
        src = SimSource("sim://thumbs", load_task("thumbs"), 96, 72, seed=5, **kw)
        src.open()
        return np.array([src.read().image.reshape(-1, 3).mean(axis=0) for _ in range(12)])

    varied, room_a, room_b = means(), means(background=1, lighting=2), means(background=3, lighting=4)
    assert room_a.std(axis=0).max() < varied.std(axis=0).max() / 2, "one room: frames alike"
    assert np.abs(room_a.mean(axis=0) - room_b.mean(axis=0)).max() > 10, "another room looks other"
    with pytest.raises(Exception, match="background -1 is out of range"):
        means(background=-1)
