"""The typed bundle (edge_app.model.bundle): read and validated in one place, without torch; every
malformed or corrupt file is one line naming it, through the CLI too."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_app.errors import UserError
from edge_app.model.bundle import VERSION, Bundle, read_bundle
from edge_app.model.inputs import LANDMARK_LAYOUT, InputPlan
from edge_app.subject.landmarks import feature_size
from edge_app.tasks.spec import load_task

WIDTH = feature_size("hand")


def _bundle(folder: Path, **changes) -> Path:
    """A landmark-model bundle written by hand (no training): bundle.json and model.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = InputPlan("landmarks", "hand", features=WIDTH, layout=LANDMARK_LAYOUT)
    b = Bundle(path=folder, task=load_task("thumbs"), arch="landmark_mlp", input_size=(1, WIDTH),
               plan=plan)
    raw = dict(b.to_json(), **changes)
    (folder / "bundle.json").write_text(json.dumps(raw))
    return folder


def test_round_trip_and_old_versions(tmp_path):
    path = _bundle(tmp_path / "b")
    b = read_bundle(path)
    assert b.task.name == "thumbs" and b.plan.input == "landmarks" and b.version == VERSION
    assert b.input_size == (1, WIDTH) and b.onnx is None and b.labels == b.task.labels
    raw = json.loads((path / "bundle.json").read_text())
    del raw["input_plan"]["layout"], raw["format"]
    raw["version"] = 1
    (path / "bundle.json").write_text(json.dumps(raw))
    old = read_bundle(path)
    assert old.version == 1 and old.plan.layout == 1, "version 1 bundles load with layout 1"


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b'{"task": {"name": "thumbs", ', "truncated or corrupt"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_corrupt_bundle_json_is_one_line(tmp_path, content, message):
    path = _bundle(tmp_path / "b")
    (path / "bundle.json").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_bundle(path)


@pytest.mark.parametrize("changes, message", [
    ({"version": VERSION + 1}, "newer than this edge-app reads"),
    ({"format": "something-else"}, "is not an edge-app bundle"),
    ({"arch": 5}, "'arch' has the wrong type"),
    ({"input_size": [224]}, "input_size must be two positive integers"),
    ({"input_size": "224"}, "'input_size' has the wrong type"),
    ({"metrics": [1]}, "'metrics' has the wrong type"),
    ({"input_plan": {"input": "crops"}}, "did you mean 'crop'"),
    ({"task": {"name": "x"}}, "bundle.json"),
])
def test_malformed_fields_are_one_line(tmp_path, changes, message):
    path = _bundle(tmp_path / "b", **changes)
    with pytest.raises(UserError, match=message):
        read_bundle(path)


def test_missing_task_and_missing_file(tmp_path):
    path = _bundle(tmp_path / "b")
    raw = json.loads((path / "bundle.json").read_text())
    del raw["task"]
    (path / "bundle.json").write_text(json.dumps(raw))
    with pytest.raises(UserError, match="'task' is missing"):
        read_bundle(path)
    with pytest.raises(UserError, match="not a model bundle"):
        read_bundle(tmp_path / "nothing")


def test_commands_report_a_corrupt_bundle_in_one_line(tmp_path, capsys):
    from edge_app.cli import main

    path = _bundle(tmp_path / "b")
    (path / "bundle.json").write_bytes(b'{"task": ')
    for argv in (["run", "--model", str(path), "--source", "sim://thumbs", "--frames", "1", "--headless"],
                 ["export", "--model", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "bundle.json" in err[0], err


@pytest.mark.parametrize("weights", [b"", b"PK\x03\x04truncated", b"not a checkpoint at all"])
def test_corrupt_weights_are_one_line(tmp_path, weights):
    pytest.importorskip("torch")
    from edge_app.train.bundle import load_model

    path = _bundle(tmp_path / "b")
    (path / "model.pt").write_bytes(weights)
    with pytest.raises(UserError, match="model.pt: the weights cannot be loaded"):
        load_model(path)


def test_a_pickle_that_runs_code_is_refused_without_torchs_advice(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_app.train.bundle import load_model

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = _bundle(tmp_path / "b")
    torch.save({"head.0.weight": Payload()}, str(path / "model.pt"))
    with pytest.raises(UserError) as exc:
        load_model(path)
    assert "not a weights file" in str(exc.value) and "weights_only" not in str(exc.value)


def test_weights_of_another_model_and_missing_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_app.train.bundle import load_model
    from edge_app.train.landmark_mlp import LandmarkModel

    path = _bundle(tmp_path / "b")
    with pytest.raises(UserError, match="missing model.pt"):
        load_model(path)
    torch.save(LandmarkModel(WIDTH + 4, 2).state_dict(), str(path / "model.pt"))
    with pytest.raises(UserError, match="from another model"):
        load_model(path)
    torch.save(LandmarkModel(WIDTH, 2).state_dict(), str(path / "model.pt"))
    bundle, model = load_model(path)
    assert bundle.plan.features == WIDTH and not model.training
