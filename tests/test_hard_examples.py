"""The deployment loop end to end on the simulator: a crop model trained in one room meets
another (background and lighting held fixed in each); the live loop collects its hard frames
there; a review confirms them through the studio's API; the retrained model is compared on
the held-back frames, made current, and swapped into the still-running loop without a gap in
its output; on fresh frames of the new room it scores higher than the old one."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from helpers import fast_train, read_jsonl

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

ROOM_A = {"background": 11, "lighting": 12}   # where the training images were taken
ROOM_B = {"background": 21, "lighting": 22}   # where the model is deployed
FRAME = (128, 96)
TRAIN = fast_train(64, 1, "--input", "crop")


def _room(task, seed, room, fps=0.0):
    from edge_app.sources.sim import SimSource

    src = SimSource("sim://thumbs", task, FRAME[0], FRAME[1], fps=fps, seed=seed, **room)
    return src


def _capture(task, out: Path, seed: int, count: int, room) -> list:
    """``count`` labelled frames of ``room`` written as a dataset; their rows for scoring."""
    from edge_app.dataset.writer import DatasetWriter

    writer = DatasetWriter(out, task)
    src = _room(task, seed, room)
    src.open()
    rows = []
    for _ in range(count):
        f = src.read()
        path = writer.save(f.image, f.truth["label"], subject=f.truth["subject"])
        rows.append({"image": path.relative_to(out).as_posix(), "label": f.truth["label"],
                     "subject": f.truth["subject"]})
    return rows


def _wait(check, what, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.slow
def test_hard_frames_reviewed_retrained_and_swapped_in(tmp_path, capsys):
    from starlette.testclient import TestClient

    from edge_app.backends.registry import choose_backend
    from edge_app.cli import main
    from edge_app.model.info import load_model_info
    from edge_app.runtime.collect import Collector, CollectPolicy
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.runtime.sinks import JsonLinesSink
    from edge_app.runtime.swap import BundleSwap, runner_maker, switch_link, target
    from edge_app.sources import FrameReader
    from edge_app.studio.app import build_app
    from edge_app.studio.core import Studio
    from edge_app.studio.review import score_bundle
    from edge_app.tasks.spec import load_task

    task = load_task("thumbs")
    # 1. trained in room A, exported, made current
    _capture(task, tmp_path / "data", 1, 60, ROOM_A)
    runs = tmp_path / "runs"
    first = runs / "a"
    assert main(["train", "--task", "thumbs", "--data", str(tmp_path / "data"), "--out", str(first)] + TRAIN) == 0
    assert main(["export", "--model", str(first)]) == 0
    link = runs / "current"
    switch_link(link, first)

    # 2. deployed in room B: the live loop runs the link, collects, watches for a new bundle
    def load(bundle):
        info = load_model_info(str(bundle))
        return Runner(info, choose_backend("onnx" if (bundle / "model.onnx").is_file() else "auto", info)[0])

    runner = load(link)
    runner.version = first.name
    runners = [runner]
    swap = BundleSwap(link, 0, runner_maker("current", load), poll=0.2).start()
    collector = Collector(tmp_path / "collected", CollectPolicy(min_interval=0.1, min_confidence=0.9,
                                                               drift_rate=0.05))
    collector.add_model("current", load_model_info(str(link)))
    sink = JsonLinesSink(str(tmp_path / "loop.jsonl"))
    stop = threading.Event()
    stats = {}

    def loop():
        with FrameReader(_room(task, 5, ROOM_B, fps=20.0)) as reader:
            stats["loop"] = run_loop(reader, runners, [sink], stop=stop, collector=collector, swaps=[swap])

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        _wait(lambda: collector.stats().written >= 60, "60 hard frames", 120)

        # 3. reviewed (scripted through the API: the simulator's truth is the person's answer)
        studio = Studio(task, "none", tmp_path / "data", runs, [a for a in TRAIN if a != "--no-progress"],
                        collected=tmp_path / "collected", current=link).start()
        try:
            c = TestClient(build_app(studio), base_url="http://127.0.0.1:8080")
            items = c.get("/api/review").json()["items"]
            assert len(items) >= 60
            u = [i["uncertainty"] for i in items]
            assert u == sorted(u, reverse=True), "most uncertain first"
            truth = _truths(tmp_path / "collected" / items[0]["model"])
            for item in items:
                r = c.post("/api/review/confirm", json={"model": item["model"], "file": item["file"],
                                                        "label": truth[item["file"]]})
                assert r.status_code == 200, r.text
            assert c.get("/api/review").json()["counts"]["held_back"] >= 5

            # 4. retrained; compared with the current model on the held-back frames; switched
            assert c.post("/api/review/retrain", json={"mode": "fast"}).status_code == 200
            result = _wait(lambda: _done(c.get("/api/review").json()["compare"]), "the comparison", 600)
        finally:
            studio.close()
        assert result["switched"], result
        new = Path(result["bundle"])
        assert target(link) == new.resolve() and target(runs / "previous") == first.resolve()
        assert result["new_score"]["value"] > result["current_score"]["value"]

        # 5. the running loop exports it in the background and swaps it in
        _wait(lambda: swap.swaps >= 1 and runners[0].version == new.name, "the swap", 300)
        swapped = sink.written
        _wait(lambda: sink.written >= swapped + 5, "frames after the swap", 300)
    finally:
        stop.set()
        thread.join(30)
        swap.close()
        collector.close()
        sink.close()
        for r in runners:
            r.backend.close()
    rows = read_jsonl(tmp_path / "loop.jsonl")
    versions = [r["results"][0]["bundle"] for r in rows]
    assert len(rows) == stats["loop"].frames and sink.dropped == 0, "every frame has its JSON line"
    frames = [r["frame"] for r in rows]
    assert frames == sorted(set(frames)), "in order, none twice"
    n = versions.index(new.name)   # swapped between frames n - 1 and n, once, never back
    assert n > 0 and versions == [first.name] * n + [new.name] * (len(rows) - n)
    assert (new / "model.onnx").is_file(), "exported in the background"

    # 6. fresh frames of room B: the retrained model scores higher
    fresh = _capture(task, tmp_path / "fresh", 99, 80, ROOM_B)
    before = score_bundle(first, fresh, tmp_path / "fresh", task)["value"]
    after = score_bundle(new, fresh, tmp_path / "fresh", task)["value"]
    collect_ms = stats["loop"].stages_ms["collect"]
    with capsys.disabled():
        print(f"\nroom B, {len(fresh)} fresh frames: accuracy {before:.1%} before, {after:.1%} after the review "
              f"({len(items)} confirmed); collect stage median {collect_ms:.3f} ms/frame; swap at frame {frames[n]}")
    assert after >= before + 0.15, (before, after)


def _truths(folder: Path) -> dict:
    from edge_app.runtime.collect import COLLECTED, read_lines

    return {r["file"]: r["truth"]["label"] for r in read_lines(folder / COLLECTED)}


def _done(compare: dict):
    if compare.get("state") == "failed":
        raise AssertionError(compare)
    return compare if compare.get("state") == "done" else None
