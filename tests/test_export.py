"""Export: ONNX with everything inside, parity with PyTorch, FP16 estimate, the engine cache."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge_app.cli import main  # noqa: E402
from edge_app.export.engine_cache import DeviceInfo, check_engine, engine_key, ensure_engine, sidecar  # noqa: E402

from helpers import capture_sim, fast_train, train_bundle  # noqa: E402

TASKS = ("thumbs", "emotions", "fingers", "face")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A small fast-mode bundle per course task, trained on the simulated camera (slow, so
    every test that takes it is marked slow)."""
    root = tmp_path_factory.mktemp("export")
    return {task: train_bundle(task, capture_sim(task, root / (task + "_data"), 40, 3, "160x120"),
                               root / task, *fast_train(64, 0, "--input", "crop"))
            for task in TASKS}   # the CNN path (landmark export: test_landmarks)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_export_checks_parity_and_estimates_fp16(task, bundles, tmp_path, capsys):
    report = tmp_path / "export.json"
    assert main(["export", "--model", str(bundles[task]), "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "parity vs PyTorch" in text and "FP16 estimate" in text
    result = json.loads(report.read_text())
    assert result["opset"] == 17 and result["parity"]["ok"]
    assert result["parity"]["max_abs_diff"] < 1e-3
    assert "fp16" in result and result["fp16"]["metric"] in ("accuracy", "rmse_px")
    model = onnx.load(result["onnx"])
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 17
    props = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(props["edge_app.task"])
    assert spec["name"] == task and json.loads(props["edge_app.input_size"]) == [64, 64]
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert model.graph.input[0].name == "images" and batch_dim.dim_param, "dynamic batch axis"

    import onnxruntime as ort

    session = ort.InferenceSession(result["onnx"], providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 3, 64, 64)).astype(np.float32)
    (out,) = session.run(None, {"images": pixels})
    if spec["kind"] == "classification":
        assert out.shape == (3, len(spec["classes"])) and np.allclose(out.sum(1), 1, atol=1e-5), \
            "softmax is inside the graph"
        assert session.get_outputs()[0].name == "scores"
    else:
        assert out.shape == (3, 3, 2) and session.get_outputs()[0].name == "points"


@pytest.mark.slow
def test_parity_failure_is_an_error(bundles, monkeypatch, capsys):
    from edge_app.export import onnx_export, parity

    real = onnx_export.run_onnx

    def drifting(graph, images, providers=None):
        return real(graph, images, providers) + 0.01

    monkeypatch.setattr(parity, "run_onnx", drifting)   # where parity looks it up
    assert main(["export", "--model", str(bundles["thumbs"]), "--no-simplify"]) == 2
    assert "parity failed" in capsys.readouterr().err


@pytest.mark.slow
def test_engine_without_tensorrt_is_one_line(bundles, capsys):
    from edge_app.export.tensorrt_build import tensorrt_available

    if tensorrt_available():
        pytest.skip("TensorRT is installed here")
    assert main(["export", "--model", str(bundles["face"]), "--engine", "--skip-onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TensorRT is not installed" in err


def _fake_build(calls):
    def build(src, dst):
        calls.append(dst.name)
        dst.write_bytes(b"ENGINE" + src.read_bytes()[:64])
    return build


def test_engine_cache_rebuilds_what_does_not_match(tmp_path):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"graph-v1")
    orin = DeviceInfo("10.3.0", "Orin", "8.7")
    calls, log = [], []
    engine = ensure_engine(onnx_path, "fp16", orin, _fake_build(calls), log=log.append)
    assert calls == [engine.name] and engine.name.startswith("model.fp16.trt10.3.0.sm87.")
    assert ensure_engine(onnx_path, "fp16", orin, _fake_build(calls), log=log.append) == engine
    assert len(calls) == 1, "a valid cached engine is reused"

    meta = json.loads(sidecar(engine).read_text())
    meta["tensorrt"] = "8.5.2"
    sidecar(engine).write_text(json.dumps(meta))
    key = engine_key(onnx_path, "fp16", orin)
    assert "TensorRT 8.5.2" in check_engine(engine, key)
    ensure_engine(onnx_path, "fp16", orin, _fake_build(calls), log=log.append)
    assert len(calls) == 2 and "TensorRT 8.5.2" in log[-1], "a tampered sidecar means rebuild"

    engine.write_bytes(engine.read_bytes()[:3])
    assert "truncated" in check_engine(engine, key)
    ensure_engine(onnx_path, "fp16", orin, _fake_build(calls), log=log.append)
    assert len(calls) == 3 and check_engine(engine, key) == ""

    xavier = DeviceInfo("10.3.0", "Xavier", "7.2")
    other = ensure_engine(onnx_path, "fp16", xavier, _fake_build(calls), log=log.append)
    assert other != engine and "Orin" in log[-1], "names the engine built for another GPU"

    onnx_path.write_bytes(b"graph-v2")
    fresh = ensure_engine(onnx_path, "fp16", orin, _fake_build(calls), log=log.append)
    assert fresh != engine and len(calls) == 5


@pytest.mark.slow
def test_engine_build_on_a_gpu(bundles, tmp_path):
    from edge_app.export.tensorrt_build import build_engine, tensorrt_available

    if not tensorrt_available():
        pytest.skip("TensorRT is not installed (engines are built on the Jetson)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    assert main(["export", "--model", str(bundles["thumbs"]), "--engine", "--precision", "fp32"]) == 0
    assert list(bundles["thumbs"].glob("model.fp32.*.engine"))
    assert build_engine   # the module imported with TensorRT present
