"""Issue 34, findings 5-8 and 13: hostile metadata, long class lists, training that diverges,
a disk that fills up while recording, and tests that measure no durations."""
from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.cli import main
from edge_app.errors import UserError

from helpers import capture_sim, fast_train, train_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small thumbs dataset and a fast landmark bundle trained on it."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("limits")
    data = capture_sim("thumbs", root / "data", 12, seed=1)
    return data, train_bundle("thumbs", data, root / "bundle", *fast_train())


def strict_json(text: str):
    """JSON as every other reader parses it: no NaN, no Infinity."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


# -- 5: metadata nested 100000 deep ----------------------------------------------------------
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"task": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001])
def test_deeply_nested_bundle_json_is_one_line(tmp_path, text):
    from edge_app.model.bundle import read_bundle

    (tmp_path / "bundle.json").write_text(text)
    with pytest.raises(UserError) as err:
        read_bundle(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "bundle.json" in message and "nested too deeply" in message


def test_deeply_nested_onnx_metadata_is_one_line(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edge_app.model.info import load_model_info

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]))
    for key, value in {"edge_app.task": "[" * 100_000 + "]" * 100_000, "edge_app.input_size": "[8, 8]"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UserError) as err:
        load_model_info(str(tmp_path / "m.onnx"))
    assert "\n" not in str(err.value) and "metadata" in str(err.value)


# -- 6: the class-list check is linear -------------------------------------------------------
def test_class_list_check_compares_each_name_about_once():
    """60000 classes took 118 s: every name was counted against the whole list. Counted in
    comparisons (no clock): a few per name, not one per pair of names."""
    from edge_app.tasks.kinds import TASK_KINDS

    class Name(str):
        compared = 0

        def __eq__(self, other):
            Name.compared += 1
            return str.__eq__(self, other)

        __hash__ = str.__hash__

    class Value:
        def __init__(self, i):
            self.i = i

        def __str__(self):
            return Name(f"c{self.i}")

    n = 2000
    names, problem = TASK_KINDS["classification"].check_labels([Value(i) for i in range(n)])
    assert problem == "" and len(names) == n
    assert Name.compared < 10 * n, f"{Name.compared} comparisons for {n} names"
    _, problem = TASK_KINDS["classification"].check_labels(["a", "b", "a", "c", "b"])
    assert problem == "duplicate entries: a, b"


# -- 7: training that is not finite stops; JSON is always JSON -------------------------------
def test_points_all_far_outside_their_images_stop_training(tmp_path, capsys):
    pytest.importorskip("torch")
    data = capture_sim("face", tmp_path / "far", 12, seed=2)
    rows = (data / "labels.csv").read_text().splitlines()
    (data / "labels.csv").write_text("\n".join([rows[0]] + [r.split(",")[0] + ",1e30" * 6 for r in rows[1:]]) + "\n")
    capsys.readouterr()
    code = main(["train", "--task", "face", "--data", str(data), "--out", str(tmp_path / "b")] + fast_train())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no image has a labelled point inside it" in err[0], err
    assert not (tmp_path / "b" / "bundle.json").exists()


def _train_with(monkeypatch, tmp_path, capsys, data, name, value):
    from edge_app.train import task_kinds

    monkeypatch.setattr(task_kinds.ClassificationKind, name, value)
    capsys.readouterr()
    code = main(["train", "--task", "thumbs", "--data", str(data), "--out", str(tmp_path / "b"),
                 "--progress-json", str(tmp_path / "p.jsonl")] + fast_train())
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_loss_that_is_not_finite_stops_training(trained, tmp_path, monkeypatch, capsys):
    from edge_app.train import task_kinds

    real = task_kinds.ClassificationKind.loss_fn

    def diverging(self, *args):
        loss = real(self, *args)
        return lambda outputs, target: loss(outputs, target) * float("nan")

    code, err = _train_with(monkeypatch, tmp_path, capsys, trained[0], "loss_fn", diverging)
    assert code == 2 and len(err) == 1 and "the loss is nan" in err[0], err
    assert not (tmp_path / "b" / "bundle.json").exists() and not (tmp_path / "b" / "history.json").exists()
    events = [strict_json(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "error" and "the loss is nan" in events[-1]["message"]


def test_a_validation_score_that_is_not_finite_stops_training(trained, tmp_path, monkeypatch, capsys):
    code, err = _train_with(monkeypatch, tmp_path, capsys, trained[0], "score",
                            lambda self, metrics: float("nan"))
    assert code == 2 and len(err) == 1 and "not a finite number" in err[0], err
    assert not (tmp_path / "b" / "bundle.json").exists()


def test_what_training_writes_is_strict_json(trained):
    _, bundle = trained
    for name in ("bundle.json", "history.json", "val_sample/labels.json"):
        strict_json((bundle / name).read_text())


def test_json_text_writes_null_for_what_json_cannot_hold():
    import numpy as np

    from edge_app.dataset.atomic import json_text

    value = {"nan": math.nan, "inf": [1.0, -math.inf], "np": np.float32("nan"), "ok": np.float64(2.5),
             "t": (1, 2)}
    assert strict_json(json_text(value, default=float)) == {"nan": None, "inf": [1.0, None], "np": None,
                                                           "ok": 2.5, "t": [1, 2]}


def test_every_json_write_refuses_nan():
    """Every ``json.dumps`` in the project passes ``allow_nan=False`` (json_text does, after
    turning NaN into null): Python's default writes the bare NaN that JSON does not have."""
    offenders = []
    for folder in ("edge_app", "train", "export"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.is_symlink() or any(p.is_symlink() for p in path.parents if ROOT in p.parents):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("dump", "dumps")
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"):
                    flag = [k for k in node.keywords if k.arg == "allow_nan"]
                    if not (flag and isinstance(flag[0].value, ast.Constant) and flag[0].value.value is False):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


# -- 8: a disk that fills up while recording -------------------------------------------------
def _run_record(tmp_path, capsys, count=40):
    capsys.readouterr()
    code = main(["run", "--model", "hands", "--subject-provider", "truth", "--headless",
                 "--source", f"sim://thumbs?count={count}&width=160&height=120",
                 "--record", str(tmp_path / "x.mp4")])
    out, err = capsys.readouterr()
    written = re.search(r"recorder: (\d+) frame\(s\) written", out)
    return code, out, err.strip().splitlines(), int(written.group(1)) if written else None


def test_disk_full_while_recording_stops_with_the_frames_it_holds(tmp_path, monkeypatch, capsys):
    from edge_app.runtime import recording

    calls = {"n": 0}

    def filling(folder):   # plenty of room for the checks and the first frames, then full
        calls["n"] += 1
        return 1 << 40 if calls["n"] <= 26 else 4096

    monkeypatch.setattr(recording, "free_bytes", filling)
    code, out, err, written = _run_record(tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "the disk is full" in err[0], err
    assert 20 <= written == recording.count_frames(tmp_path / "x.mp4") < 40, out


def test_frames_the_writer_lost_are_not_counted(tmp_path, monkeypatch, capsys):
    """OpenCV's writer says nothing when a write fails (FFmpeg logs a warning): the segment is
    checked when it closes, and frames it does not hold are not reported as written."""
    from edge_app.runtime import recording

    real = recording._open_writer

    class Losing:   # a full disk: the first 5 frames reach the file, the rest are lost
        def __init__(self, writer):
            self.writer, self.frames = writer, 0

        def write(self, frame):
            self.frames += 1
            if self.frames <= 5:
                self.writer.write(frame)

        def release(self):
            self.writer.release()

    monkeypatch.setattr(recording, "_open_writer", lambda *a: Losing(real(*a)) if real(*a) else None)
    code, out, err, written = _run_record(tmp_path, capsys)
    assert code == 2 and len(err) == 1 and "holds 5 of the 40 frame(s)" in err[0], err
    assert written == 0 and not (tmp_path / "x.mp4").exists(), out


def test_opencv_and_ffmpeg_keep_quiet_after_import(tmp_path):
    """Their own lines (``[ WARN:0@...]``, ``[mov,mp4 @ 0x...] moov atom not found``) would come
    before the project's one line; importing edge_app silences both, in a fresh process."""
    (tmp_path / "fake.mp4").write_text("not a video\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    script = ("import os, edge_app\nfrom edge_app.errors import SourceError\n"
              "from edge_app.sources import open_source\n"
              "try:\n    open_source(os.environ['CLIP']).open()\nexcept SourceError:\n    print('refused')\n"
              "print(os.environ['OPENCV_LOG_LEVEL'], os.environ['OPENCV_FFMPEG_LOGLEVEL'])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(ROOT),
                          env=dict(env, CLIP=str(tmp_path / "fake.mp4")))
    assert done.returncode == 0 and done.stdout.split() == ["refused", "ERROR", "-8"], done
    assert done.stderr == "", done.stderr   # OpenCV 4.5.4 (JetPack 5) ignores the FFmpeg level


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare")),
                    reason="needs root and unshare for a private tmpfs")
def test_a_real_full_disk_while_recording(tmp_path):
    """A 9 MB tmpfs in a private mount namespace (gone with the process): the recording stops
    with one line, no OpenCV warning, and the file holds the frames the summary counts."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        "mount -t tmpfs -o size=9m tmpfs \"$DISK\" || exit 77; "
        "\"$PY\" -m edge_app run --model hands --subject-provider truth --headless "
        "--source 'sim://thumbs?count=3000&width=640&height=480' --record \"$DISK/x.mp4\" "
        ">\"$OUT/out\" 2>\"$OUT/err\"; echo $? >\"$OUT/rc\"; "
        "\"$PY\" -c 'import sys; from edge_app.runtime.recording import count_frames; "
        "print(count_frames(sys.argv[1]))' \"$DISK/x.mp4\" >\"$OUT/frames\"")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=str(ROOT), capture_output=True,
                          text=True, env=dict(os.environ, DISK=str(disk), OUT=str(tmp_path), PY=sys.executable))
    if done.returncode == 77 or not (tmp_path / "rc").exists():
        pytest.skip(f"no private tmpfs here ({done.stderr.strip()[:200]})")
    err = [line for line in (tmp_path / "err").read_text().splitlines()
           if line.strip() and not line.startswith(("W0000", "INFO: Created", "WARNING: All log"))]
    out = (tmp_path / "out").read_text()
    assert (tmp_path / "rc").read_text().strip() == "2", (out, err)
    assert len(err) == 1 and err[0].startswith("error: ") and "disk is full" in err[0], err
    written = int(re.search(r"recorder: (\d+) frame\(s\) written", out).group(1))
    assert 0 < written == int((tmp_path / "frames").read_text()), out


# -- 13: tests measure events, not durations -------------------------------------------------
TIMING = re.compile(r"monotonic\(\)|perf_counter\(\)|time\.time\(\)|np\.diff\(times|gaps\.max\(\)|\btook\s*<")


def test_no_test_asserts_how_long_something_took():
    """A busy machine stretches every duration: tests check events and counts (every frame
    has its JSON line, the swap happened between two frames) and wait with a hang guard of
    minutes (helpers.HANG_GUARD); figures belong to the benchmark."""
    found = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith("assert") and TIMING.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
