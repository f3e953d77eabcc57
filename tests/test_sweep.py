"""Every command with bad arguments (issue 34, the sweep): each case ends with one line on
stderr (``error: ...``), a non-zero exit, and no traceback, with nothing of OpenCV's or
FFmpeg's own before it. The table grows with each command and each new flag: a failure
that reaches the user as a traceback or a page of library output is a bug of its own.

Each case runs ``edge_app.cli.main`` in this process with the file descriptors captured, so
that lines C libraries write (FFmpeg, OpenCV) count too. Models in the table fail before
MediaPipe loads (its own start-up lines are not ours to test here)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_app.cli import main

from helpers import capture_sim, fast_train, train_bundle

# (case id, the arguments; {name} fields are paths of the ``world`` fixture)
CASES = [
    # -- run ---------------------------------------------------------------------------
    ("run-deep-bundle-json", "run --model {deep} --source sim://thumbs?count=2 --headless"),   # 5
    ("run-collect-max-mb-nan", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--collect {tmp}/c --collect-max-mb nan"),                                                  # 9
    ("run-collect-max-mb-inf", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--collect {tmp}/c --collect-max-mb inf"),
    ("run-collect-every-nan", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--collect {tmp}/c --collect-every nan"),
    ("run-collect-below-nan", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--collect {tmp}/c --collect-below nan"),
    ("run-serve-port", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--serve 127.0.0.1:99999"),                                                                # 10
    ("run-fake-video", "run --model {bundle} --source {fake_video} --headless"),                 # 10
    ("run-rtsp-unreachable", "run --model {bundle} --source rtsp://127.0.0.1:9/x --headless"),  # 10
    ("run-labels-with-hands", "run --model hands --source sim://thumbs?count=2 --headless "
     "--labels /nonexistent"),                                                                  # 11
    ("run-layout-with-hands", "run --model hands --source sim://thumbs?count=2 --headless "
     "--layout bogus"),                                                                         # 11
    ("run-labels-with-bundle", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--labels {labels}"),
    ("run-json-out-missing-folder", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--json-out {tmp}/missing/x.jsonl"),
    ("run-json-out-folder", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--json-out {tmp}"),
    ("run-record-missing-folder", "run --model {bundle} --source sim://thumbs?count=2 --headless "
     "--record {tmp}/missing/x.mp4"),
    ("run-smooth-0", "run --model {bundle} --source sim://thumbs?count=2 --headless --smooth 0"),
    ("run-frames-0", "run --model {bundle} --source sim://thumbs?count=2 --headless --frames 0"),
    ("run-threads-0", "run --model {bundle} --source sim://thumbs?count=2 --headless --threads 0"),
    ("run-conf-nan", "run --model {bundle} --source sim://thumbs?count=2 --headless --conf nan"),
    ("run-iou-2", "run --model {bundle} --source sim://thumbs?count=2 --headless --iou 2"),
    ("run-max-det-0", "run --model {bundle} --source sim://thumbs?count=2 --headless --max-det 0"),
    ("run-missing-model", "run --model {tmp}/nope --source sim://thumbs?count=2 --headless"),
    # -- eval --------------------------------------------------------------------------
    ("eval-deep-bundle-json", "eval --model {deep} --data {data}"),                              # 5
    ("eval-json-missing-folder", "eval --model {bundle} --data {data} --json {tmp}/missing/x.json"),  # 10
    ("eval-json-folder", "eval --model {bundle} --data {data} --json {tmp}"),                    # 10
    ("eval-device", "eval --model {bundle} --data {data} --device tpu:7"),
    # -- export ------------------------------------------------------------------------
    ("export-deep-bundle-json", "export --model {deep}"),                                        # 5
    ("export-json-missing-folder", "export --model {bundle} --json {tmp}/missing/x.json"),       # 10
    ("export-opset-1", "export --model {bundle} --opset 1"),                                     # 10
    ("export-opset-99", "export --model {bundle} --opset 99"),
    ("export-workspace-0", "export --model {bundle} --workspace 0"),
    # -- train -------------------------------------------------------------------------
    ("train-out-file", "train --task thumbs --data {data} --out {file} " + " ".join(fast_train())),   # 10
    ("train-out-under-file", "train --task thumbs --data {data} --out {file}/b " + " ".join(fast_train())),
    ("train-device", "train --task thumbs --data {data} --out {tmp}/t --device tpu:7 "
     + " ".join(fast_train())),                                                                  # 10
    ("train-progress-json-missing-folder", "train --task thumbs --data {data} --out {tmp}/t "
     "--progress-json {tmp}/missing/p.jsonl " + " ".join(fast_train())),                        # 11
    ("train-arch", "train --task thumbs --data {data} --out {tmp}/t --arch bogus --mode fast"),
    ("train-weights", "train --task thumbs --data {data} --out {tmp}/t --weights {tmp}/none.pt "
     "--mode fast"),
    ("train-points-all-outside", "train --task face --data {far_points} --out {tmp}/t "
     + " ".join(fast_train())),                                                                 # 7
    # -- data --------------------------------------------------------------------------
    ("data-info-json-missing-folder", "data info {data} --json {tmp}/missing/x.json"),           # 10
    ("data-info-json-folder", "data info {data} --json {tmp}"),
    ("data-import-out-file", "data import {data} --out {file}"),                                 # 10
    ("data-import-out-under-file", "data import {data} --out {file}/d"),
    # -- studio ------------------------------------------------------------------------
    ("studio-port", "studio --task thumbs --source none --port 99999 --data {tmp}/sd --runs {tmp}/sr"),  # 10
    ("studio-port-0", "studio --task thumbs --source none --port 0 --data {tmp}/sd --runs {tmp}/sr"),
    ("studio-host", "studio --task thumbs --source none --host 192.0.2.1 --data {tmp}/sd --runs {tmp}/sr"),
    ("studio-train-args-quote", "studio --task thumbs --source none --data {tmp}/sd --runs {tmp}/sr "
     "--train-args", '"--mode fast'),                                                            # 10
    # -- capture -----------------------------------------------------------------------
    ("capture-out-file", "capture --task thumbs --source sim://thumbs --headless --count 2 --out {file}"),
    ("capture-interval-nan", "capture --task thumbs --source sim://thumbs --headless --count 2 "
     "--interval nan --out {tmp}/cap"),
    ("capture-camera-check-nan", "capture --task thumbs --source sim://thumbs --headless --count 2 "
     "--camera-check nan --out {tmp}/cap"),
    ("capture-fake-video", "capture --task thumbs --source {fake_video} --headless --label thumbs_up "
     "--out {tmp}/cap"),                                                                          # 10
    ("capture-rtsp-unreachable", "capture --task thumbs --source rtsp://127.0.0.1:9/x --headless "
     "--label thumbs_up --out {tmp}/cap"),                                                        # 10
    # -- bench -------------------------------------------------------------------------
    ("bench-json-missing-folder", "bench --model {bundle} --json {tmp}/missing/x.json"),
    ("bench-png-missing-folder", "bench --model {bundle} --png {tmp}/missing/x.png"),
    ("bench-labels-with-bundle", "bench --model {bundle} --labels {labels}"),
    ("bench-threads-0", "bench --model {bundle} --threads 0"),
    # -- doctor, demo ------------------------------------------------------------------
    ("doctor-json-missing-folder", "doctor --json {tmp}/missing/x.json"),
    ("doctor-seconds-nan", "doctor --source sim://thumbs --seconds nan"),
    ("demo-out-file", "demo --out {file}"),
    ("demo-captures-0", "demo --out {tmp}/demo --captures 0"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small dataset and bundle, one bundle whose bundle.json nests 100000 brackets, a point
    dataset whose every point lies far outside its image, a file where a folder is wanted, a
    file that is not a video, and a labels file."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("sweep")
    data = capture_sim("thumbs", root / "data", 12, seed=1)
    bundle = train_bundle("thumbs", data, root / "bundle", *fast_train())
    deep = root / "deep"
    shutil.copytree(str(bundle), str(deep))
    (deep / "bundle.json").write_text("[" * 100_000 + "]" * 100_000)
    far = capture_sim("face", root / "far", 6, seed=2)
    rows = (far / "labels.csv").read_text().splitlines()
    (far / "labels.csv").write_text("\n".join([rows[0]] + [r.split(",")[0] + ",1e30" * 6 for r in rows[1:]]) + "\n")
    (root / "FILE").write_text("a file, not a folder\n")
    (root / "fake.mp4").write_text("not a video\n")
    (root / "labels.txt").write_text("hand\n")
    return {"tmp": root, "data": data, "bundle": bundle, "deep": deep, "far_points": far,
            "file": root / "FILE", "fake_video": root / "fake.mp4", "labels": root / "labels.txt"}


def argv(case: tuple, world: dict) -> list:
    words = case[1].format(**world).split() + list(case[2:])
    return words


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_give_one_line(case, world, capfd, monkeypatch):
    monkeypatch.chdir(world["tmp"])
    try:
        code = main(argv(case, world))
    except SystemExit as exc:   # argparse, or a check that exits
        code = exc.code
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err, err
    assert code not in (0, None), (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) < 600, lines[0]


def test_the_table_covers_every_command():
    from edge_app.cli import COMMANDS

    covered = {c[1].split()[0] for c in CASES}
    assert covered == {name for name, _, _ in COMMANDS}, sorted({n for n, _, _ in COMMANDS} - covered)


def test_nothing_was_written_where_a_case_failed(world):
    """The failed cases left no half-made outputs: no bundle, no JSON of NaN."""
    for name in ("t", "missing", "c", "cap", "demo"):
        path = Path(world["tmp"]) / name
        assert not (path / "bundle.json").exists()
    bundle = json.loads((Path(world["bundle"]) / "bundle.json").read_text())
    assert bundle["task"]["name"] == "thumbs"
