"""A new bundle while the loop runs: the `current` link is switched atomically with the
previous bundle kept, a watcher prepares the new model in the background (slowly, like an
engine build) and the loop swaps it in between two frames, with no gap in its output."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from edge_app.errors import UserError
from edge_app.runtime.swap import PREVIOUS, BundleSwap, rollback, runner_maker, switch_link, target

from helpers import FakeBackend, FakeSource, read_jsonl, wait_for


def _bundle(root, name):
    path = root / name
    path.mkdir()
    (path / "bundle.json").write_text("{}")
    return path


def test_switch_keeps_the_previous_bundle_and_rolls_back(tmp_path):
    a, b = _bundle(tmp_path, "a"), _bundle(tmp_path, "b")
    link = tmp_path / "current"
    assert switch_link(link, a) is None
    assert target(link) == a.resolve() and not os.path.isabs(os.readlink(str(link))), "relative link"
    assert switch_link(link, b) == a.resolve()
    assert target(link) == b.resolve() and target(tmp_path / PREVIOUS) == a.resolve()
    assert rollback(link) == a.resolve()
    assert target(link) == a.resolve() and target(tmp_path / PREVIOUS) == b.resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp link left"
    with pytest.raises(UserError, match="not a bundle"):
        switch_link(link, tmp_path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="is not a link"):
        switch_link(tmp_path / "plain", b)


def test_loop_swaps_the_new_bundle_in_without_a_gap(tmp_path):
    from edge_app.model.info import ModelInfo
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.runtime.sinks import JsonLinesSink
    from edge_app.sources import FrameReader
    from edge_app.tasks.spec import load_task

    a, b = _bundle(tmp_path, "a"), _bundle(tmp_path, "b")
    link = tmp_path / "current"
    switch_link(link, a)
    info = ModelInfo("current", load_task("thumbs"), (16, 16), None, None, "scores", None)
    old = Runner(info, FakeBackend([0.9, 0.1]), version="a")
    built = []

    out = tmp_path / "out.jsonl"
    sink = JsonLinesSink(str(out))
    during = []

    def load(bundle):   # an engine build that takes a while, off the loop's thread: it ends
        start = sink.written   # only once the loop has written 10 more frames meanwhile
        wait_for(lambda: sink.written >= start + 10, "frame while the new model was prepared")
        during.append(sink.written - start)
        r = Runner(ModelInfo(bundle.name, info.task, (16, 16), None, None, "scores", None),
                   FakeBackend([0.1, 0.9]))
        built.append(threading.current_thread().name)
        return r

    swap = BundleSwap(link, 0, runner_maker("current", load), poll=0.1, export=False).start()
    stop = threading.Event()
    runners = [old]

    def script():   # switch the link after a few frames; stop a few frames after the swap
        wait_for(lambda: sink.written >= 3, "first frames")
        switch_link(link, b)
        wait_for(lambda: runners[0].version == "b", "swap")
        swapped = sink.written
        wait_for(lambda: sink.written >= swapped + 5, "frames after the swap")
        stop.set()

    driver = threading.Thread(target=script, daemon=True)
    driver.start()
    with FrameReader(FakeSource(delay=0.01)) as reader:
        stats = run_loop(reader, runners, [sink], stop=stop, swaps=[swap])
    driver.join()
    sink.close()
    assert swap.close() is None
    rows = read_jsonl(out)
    bundles = [r["results"][0]["bundle"] for r in rows]
    labels = [r["results"][0]["label"] for r in rows]
    assert bundles[0] == "a" and bundles[-1] == "b" and labels[-1] == "thumbs_down"
    assert built == ["bundle-swap"], "prepared in the watcher's thread"
    assert runners[0].version == "b" and runners[0].info.name == "current"
    assert old.backend.closed, "the replaced model is closed"
    first_b = bundles.index("b")
    assert set(bundles[first_b:]) == {"b"}, "one swap, never back"
    assert during and during[0] >= 10, "frames kept flowing while the new model was prepared"
    assert len(rows) == stats.frames and sink.dropped == 0, "every frame has its JSON line"
    frames = [r["frame"] for r in rows]
    assert frames == sorted(set(frames))
    assert all(json.dumps(r) for r in rows)


def test_a_bundle_that_fails_to_load_leaves_the_running_model(tmp_path):
    a, b = _bundle(tmp_path, "a"), _bundle(tmp_path, "b")
    link = tmp_path / "current"
    switch_link(link, a)

    def load(bundle):
        raise UserError("no backend can run it")

    swap = BundleSwap(link, 0, load, poll=0.05, export=False).start()
    switch_link(link, b)
    wait_for(lambda: swap.failed, "failure reported")
    assert swap.take() is None and "no backend can run it" in swap.failed[0]
    time.sleep(0.3)
    assert len(swap.failed) == 1, "said once, not every second"
    swap.close()


def test_a_model_that_reads_another_input_is_not_swapped_in(tmp_path):
    """The loop's subject stage was built for the running model: a crop model replaced by a
    whole-frame one (or a hand model by a face one) would answer nothing; it is refused."""
    from types import SimpleNamespace

    from edge_app.runtime.swap import _needs

    a, b = _bundle(tmp_path, "a"), _bundle(tmp_path, "b")
    link = tmp_path / "current"
    switch_link(link, a)

    def runner(subject, schema=None):
        return SimpleNamespace(info=SimpleNamespace(subject=subject, plan=SimpleNamespace(feature_schema=schema)),
                               backend=SimpleNamespace(close=lambda: None))

    running = runner("hand", "hand")
    swap = BundleSwap(link, 0, lambda bundle: runner(None), poll=0.05, export=False,
                      running=running).start()
    switch_link(link, b)
    wait_for(lambda: swap.failed, "failure reported")
    swap.close()
    assert swap.take() is None and "restart the loop" in swap.failed[0], swap.failed
    assert _needs(running) == ("hand", "hand")


def test_export_runs_at_low_priority_without_preexec(tmp_path, monkeypatch):
    """The export child is started as ``nice -n 10 python -m edge_app export`` where ``nice``
    exists; no preexec_fn, which Python documents as unsafe in a parent with threads (the
    loop's reader and writer)."""
    import subprocess

    from edge_app.runtime import swap

    seen = {}

    class _Done:
        returncode = 1

        def __init__(self, cmd, **kw):
            seen["cmd"], seen["kw"] = cmd, kw

        def poll(self):
            return 1

    monkeypatch.setattr(subprocess, "Popen", _Done)
    monkeypatch.setattr(swap.shutil, "which", lambda name: "/usr/bin/nice" if name == "nice" else None)
    assert swap.export_bundle(tmp_path) is False
    assert seen["cmd"][:3] == ["/usr/bin/nice", "-n", "10"] and seen["cmd"][4:7] == ["-m", "edge_app", "export"]
    assert "preexec_fn" not in seen["kw"]
    monkeypatch.setattr(swap.shutil, "which", lambda name: None)
    swap.export_bundle(tmp_path)
    assert seen["cmd"][1:4] == ["-m", "edge_app", "export"], "no nice: runs as it is"
