"""``--input both``: the crop CNN's features and the landmarks in one two-input graph, through
training, eval, export parity, both CPU backends and the live loop; and what it relies on."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.cli import main
from edge_app.model.inputs import LANDMARK_LAYOUT
from edge_app.subject.landmarks import feature_size

from helpers import FAST_TRAIN, capture_sim, run_jsonl, sim_train_eval, train_bundle


def _live(bundle, task, backend, log):
    return run_jsonl(bundle, f"sim://{task}?seed=3&width=320&height=240", log,
                     "--frames", "15", "--backend", backend)


@pytest.mark.slow
@pytest.mark.parametrize("task,key,bound", [("fingers", "accuracy", 0.75), ("face", "nme", 0.08)])
def test_fused_model_end_to_end(task, key, bound, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    bundle, metrics = sim_train_eval(task, tmp_path, 100, 50, "--input", "both", *FAST_TRAIN)
    plan = json.loads((bundle / "bundle.json").read_text())["input_plan"]
    assert plan["input"] == "both" and plan["features"] == (122 if task == "fingers" else 22)
    assert metrics["detection_rate"] == 1.0 and metrics["input"] == "both"
    assert (metrics[key] >= bound) if key == "accuracy" else (metrics[key] <= bound)
    capsys.readouterr()
    assert main(["export", "--model", str(bundle)]) == 0
    assert "parity vs PyTorch on {}: OK".format(bundle / "val_sample") in capsys.readouterr().out

    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images", "landmarks"]
    onnx_rows = _live(bundle, task, "onnx", tmp_path / "onnx.jsonl")
    torch_rows = _live(bundle, task, "torch", tmp_path / "torch.jsonl")
    assert len(onnx_rows) == 15
    if key == "accuracy":
        assert [r["results"][0]["label"] for r in onnx_rows] == [r["results"][0]["label"] for r in torch_rows]
        assert np.mean([r["results"][0]["label"] == r["truth"]["label"] for r in onnx_rows]) >= 0.7
    else:
        a = [r["results"][0]["points"]["nose"] for r in onnx_rows]
        b = [r["results"][0]["points"]["nose"] for r in torch_rows]
        assert np.allclose(a, b, atol=1e-4), "the two backends agree"
        err = [np.linalg.norm(np.subtract(p, r["truth"]["points"]["nose"])) for p, r in zip(a, onnx_rows)]
        assert np.mean(err) < 0.03, "points mapped back from the crop into the frame"


@pytest.mark.slow
def test_fused_export_parity_on_a_dataset_folder(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    data = capture_sim("thumbs", tmp_path / "d", 40, 1)
    bundle = train_bundle("thumbs", data, tmp_path / "b", "--input", "both", *FAST_TRAIN)
    capsys.readouterr()
    assert main(["export", "--model", str(bundle), "--data", str(data)]) == 0
    assert f"parity vs PyTorch on {data}: OK, 40 images" in capsys.readouterr().out


def test_bench_feeds_both_inputs(tmp_path):
    from edge_app.bench.measure import sample_batch
    from edge_app.model.info import ModelInfo
    from edge_app.tasks.spec import load_task

    info = ModelInfo("m", load_task("fingers"), (64, 64), None, None, "scores",
                     {"input": "both", "subject": "hand", "features": 86})
    images, feats = sample_batch(info, 3)
    assert info.input_names == ("images", "landmarks")
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8 and feats.shape == (3, 86)


def test_a_landmark_model_of_another_feature_layout_is_refused(tmp_path):
    from edge_app.errors import UserError
    from edge_app.model.info import load_model_info
    from edge_app.tasks.spec import load_task

    (tmp_path / "bundle.json").write_text(json.dumps({
        "task": load_task("fingers").to_dict(), "input_size": [1, 44], "arch": "landmark_mlp",
        "input_plan": {"input": "landmarks", "subject": "hand", "features": 44}}))
    with pytest.raises(UserError, match="44 features of layout 1, but this version computes {} of "
                                        "layout {}; retrain".format(feature_size("hand"), LANDMARK_LAYOUT)):
        load_model_info(str(tmp_path))


def test_ridge_bias_is_not_penalised():
    pytest.importorskip("torch")
    from edge_app.train.head_fitting import ridge_solve

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 300))
    y = x[:, :2] @ np.array([[0.3, -0.2], [0.1, 0.4]]) + 0.5
    preds = []
    for offset in (0.0, 25.0):   # centred or not, the same fit
        w = ridge_solve(x + offset, y, 30.0)
        preds.append(np.hstack([x + offset, np.ones((40, 1))]) @ w)
        assert np.allclose(preds[-1].mean(0), y.mean(0), atol=1e-9), "the mean is fitted whatever the penalty"
    assert np.allclose(preds[0], preds[1], atol=1e-6), "a constant offset in the features changes nothing"
