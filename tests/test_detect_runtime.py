"""Detection models in the runtime: detector ONNX files in every supported layout through
`edge-app run` and `edge-app bench`, the built-in hand and face detectors, the crowd scene,
tracking, accuracy counting, overlays and the errors a user can fix."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from edge_app.cli import main
from edge_app.detect import fixtures
from edge_app.detect.metrics import Counts, iou_matrix
from edge_app.errors import UserError
from edge_app.model.results import DetectionsResult

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    return fixtures.write(tmp_path_factory.mktemp("detectors")).pop().parent


@pytest.fixture
def frames(tmp_path):
    """Two stills of different sizes: boxes must land in each one's own pixels."""
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((480, 640, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "b.jpg"), np.full((300, 300, 3), 90, np.uint8))
    return folder


def _labels(graphs, layout):
    return str(graphs / ("ssd-labels.txt" if layout == "ssd" else "labels.txt"))


def _expected(layout, w, h):
    """fixtures.OBJECTS mapped from the model input back to a w x h frame."""
    size = fixtures.SIZE[layout][0]
    out = []
    for x0, y0, x1, y1, _ in fixtures.OBJECTS:
        box = np.array([x0, y0, x1, y1]) * size
        if layout == "ssd":   # plain resize
            box = box / size * np.array([w, h, w, h])
        else:                 # letterbox: scale to fit, centred
            scale = min(size / w, size / h)
            pad = np.array([(size - w * scale) / 2, (size - h * scale) / 2] * 2)
            box = (box - pad) / scale
        out.append(box.clip(0, [w, h, w, h]) / np.array([w, h, w, h]))
    return np.array(out)


@pytest.mark.parametrize("layout", list(fixtures.ROWS))
def test_run_a_detector_onnx_on_files(graphs, frames, tmp_path, layout, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["run", "--model", str(graphs / (layout + ".onnx")), "--labels", _labels(graphs, layout),
                 "--source", str(frames), "--headless", "--json-out", str(out)]) == 0
    assert f"{layout} detector" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2
    for rec, (w, h) in zip(records, [(640, 480), (300, 300)]):
        result = rec["results"][0]
        assert result["type"] == "detections"
        found = result["detections"]
        assert [d["label"] for d in found] == ["person", "hand", "face"], \
            "duplicates suppressed, background never a class, names from the labels file"
        assert [d["score"] for d in found] == [0.9, 0.9, 0.9]
        assert np.allclose([d["box"] for d in found], _expected(layout, w, h), atol=2e-3)
        assert result["counts"] == {"face": 1, "hand": 1, "person": 1}
        assert {"preprocess", "infer", "decode"} <= set(rec["timings_ms"])


def test_class_filter_threshold_and_metadata_labels(tmp_path, frames):
    import onnx

    path = tmp_path / "yolo.onnx"
    names = "{0: 'person', 1: 'hand', 2: 'face'}"
    onnx.save(fixtures.graph(fixtures.heads("yolov8"), (640, 640), metadata={"names": names}), str(path))
    out = tmp_path / "out.jsonl"
    assert main(["run", "--model", str(path), "--source", str(frames), "--headless", "--frames", "1",
                 "--classes", "hand,face", "--json-out", str(out)]) == 0
    found = json.loads(out.read_text().splitlines()[0])["results"][0]["detections"]
    assert [d["label"] for d in found] == ["hand", "face"], "names from Ultralytics metadata"
    assert main(["run", "--model", str(path), "--source", str(frames), "--headless", "--frames", "1",
                 "--conf", "0.95", "--json-out", str(out)]) == 0
    assert json.loads(out.read_text().splitlines()[0])["results"][0]["detections"] == []


def test_detector_errors_are_one_line(graphs, tmp_path, frames):
    import onnx

    from edge_app.detect.loading import DetectOptions
    from edge_app.model.info import load_model_info

    with pytest.raises(UserError, match=r"3 names in the labels but the model scores 4 classes \(SSD label files start with BACKGROUND\)"):
        load_model_info(str(graphs / "ssd.onnx"), DetectOptions(labels=str(graphs / "labels.txt")))
    with pytest.raises(UserError, match="--classes dog: not a class of this model"):
        load_model_info(str(graphs / "yolov8.onnx"), DetectOptions(labels=str(graphs / "labels.txt"),
                                                                   classes=["dog"]))
    classifier = tmp_path / "classifier.onnx"
    onnx.save(fixtures.graph({"logits": np.zeros((1, 1000))}, (224, 224)), str(classifier))
    with pytest.raises(UserError, match=r"classifier.onnx: outputs logits \[1, 1000\] are not a detector layout"):
        load_model_info(str(classifier))
    with pytest.raises(UserError, match="--layout yolo8: not a layout.*did you mean 'yolov8'"):
        load_model_info(str(graphs / "yolov8.onnx"), DetectOptions(layout="yolo8"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(UserError, match="broken.onnx: not a readable ONNX model"):
        load_model_info(str(broken))


def test_forced_layout_and_numbers_without_labels(graphs, caplog):
    from edge_app.detect.loading import DetectOptions
    from edge_app.model.info import load_model_info

    caplog.set_level(logging.INFO, logger="edge_app.detect.loading")
    info = load_model_info(str(graphs / "yolov5.onnx"), DetectOptions(layout="yolov5"))
    assert info.detector.layout.name == "yolov5" and info.labels == ("0", "1", "2")
    assert "yolov5.onnx: no labels" in caplog.text
    assert info.input_names == ("images",) and info.input_size == (640, 640)
    assert load_model_info(str(graphs / "ssd.onnx")).input_names == ("input_0",)


def test_prepare_normalises_as_each_family_expects():
    from edge_app.detect.detector import Detector
    from edge_app.detect.layouts import LAYOUTS

    frame = np.zeros((60, 80, 3), np.uint8)
    frame[..., 0], frame[..., 2] = 255, 0   # pure blue in BGR
    ssd, _ = Detector(LAYOUTS["ssd"], (30, 40)).prepare(frame)
    assert ssd.shape == (1, 3, 30, 40) and ssd.dtype == np.float32
    assert np.allclose(ssd[0, 0], -1.0) and np.allclose(ssd[0, 2], 1.0), "RGB, (p - 127.5) / 127.5"
    yolo, where = Detector(LAYOUTS["yolov8"], (64, 64)).prepare(frame)
    assert np.allclose(yolo[0, 2, 8:56], 1.0) and np.allclose(yolo[0, 0, :8], 114 / 255.0), \
        "RGB / 255 with the grey letterbox bands"
    assert where.pad_y == 8.0


def test_bench_times_decode_and_nms(graphs, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(graphs / "yolov8.onnx"), "--labels", _labels(graphs, "yolov8"),
                 "--backends", "onnx", "--frames", "20", "--warmup", "2", "--json", str(out)]) == 0
    assert "decode + NMS per frame" in capsys.readouterr().out
    row = json.loads(out.read_text())["rows"][0]
    assert row["boxes"] == 3 and row["decode_ms"]["p50"] > 0


def test_tracker_keeps_ids_and_hides_one_frame_blips():
    pytest.importorskip("norfair")
    from edge_app.detect.track import Tracker

    tracker = Tracker()
    seen = []
    for f in range(6):
        boxes = [[0.1 + 0.01 * f, 0.1, 0.3 + 0.01 * f, 0.4], [0.6, 0.5 - 0.01 * f, 0.8, 0.7 - 0.01 * f]]
        names = ("hand", "face")
        if f == 2:   # a false positive for one frame only
            boxes.append([0.4, 0.8, 0.45, 0.85])
            names += ("hand",)
        result = DetectionsResult(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                                  np.array([0, 1, 0][: len(boxes)]), names)
        seen.append(tracker.update(result))
    assert len(seen[0].names) == 0, "a box is shown once a second frame confirms it"
    ids = [dict(zip(r.names, r.track_ids.tolist())) for r in seen[1:]]
    assert all(i == ids[0] for i in ids) and len(set(ids[0].values())) == 2, "ids persist"
    assert all(len(r.names) == 2 for r in seen[1:]), "the one-frame blip never shows"


def test_counts_match_one_to_one_at_iou():
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    c = Counts()
    c.add(np.array([[0, 0, 10, 10], [0, 1, 10, 11], [50, 50, 60, 60]]), [0.9, 0.8, 0.7], truth)
    assert (c.tp, c.fp, c.fn) == (1, 2, 1), "a duplicate of a matched box is a false positive"
    assert c.precision == pytest.approx(1 / 3) and c.recall == 0.5
    assert iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(1 / 3)


def test_crowd_scene_truth_and_the_truth_detector(tmp_path):
    from edge_app.sources import open_source

    src = open_source("sim://crowd?seed=3&count=12")
    src.open()
    kinds = set()
    for _ in range(12):
        frame = src.read()
        subjects = frame.truth["subjects"]
        boxes = np.array([s["box"] for s in subjects])
        assert 1 <= len(subjects) <= 6 and ((boxes >= 0) & (boxes <= 1)).all()
        overlap = iou_matrix(boxes, boxes)
        assert (overlap[~np.eye(len(boxes), dtype=bool)] == 0).all(), "subjects never overlap"
        kinds |= {s["kind"] for s in subjects}
    assert kinds == {"hand", "face"}
    out = tmp_path / "out.jsonl"
    assert main(["run", "--model", "hands", "--model", "faces", "--source", "sim://crowd?seed=3&count=5",
                 "--headless", "--subject-provider", "truth", "--json-out", str(out)]) == 0
    for rec in map(json.loads, out.read_text().splitlines()):
        for result, kind in zip(rec["results"], ("hand", "face")):
            want = sorted(s["box"] for s in rec["truth"]["subjects"] if s["kind"] == kind)
            got = sorted(d["box"] for d in result["detections"])
            assert np.allclose(got, want, atol=1e-4) if want else got == []


def test_track_ids_in_the_json_lines(tmp_path):
    pytest.importorskip("norfair")
    out = tmp_path / "out.jsonl"
    assert main(["run", "--model", "faces", "--source", "sim://crowd?seed=5&count=4&hold=4", "--headless",
                 "--subject-provider", "truth", "--track", "--json-out", str(out),
                 "--record", str(tmp_path / "out.avi")]) == 0
    records = [json.loads(line)["results"][0] for line in out.read_text().splitlines()]
    assert records[0]["detections"] == [], "not confirmed yet"
    tracks = [sorted(d["track"] for d in r["detections"]) for r in records[1:]]
    assert tracks[0] and all(t == tracks[0] for t in tracks), "every face keeps its id as the scene pans"
    assert (tmp_path / "out.avi").stat().st_size > 0


def test_builtin_detectors_run_on_their_backend_from_the_registry():
    from edge_app.backends.registry import BACKENDS, BackendOptions, backends_for, choose_backend
    from edge_app.detect.builtin import SubjectsBackend
    from edge_app.model.info import load_model_info

    info = load_model_info("hands")
    assert backends_for(info) == [info.runs_on] == ["mediapipe"]
    assert not BACKENDS["mediapipe"].general, "never tried for other models"
    backend, why = choose_backend("auto", info, options=BackendOptions("truth", tracking=False))
    assert isinstance(backend, SubjectsBackend) and (backend.provider, backend.tracking) == ("truth", False)
    assert why == "the model's own backend"
    image = np.zeros((100, 200, 3), np.uint8)
    truth = {"subjects": [{"kind": "hand", "box": [0.1, 0.2, 0.5, 0.6]},
                          {"kind": "face", "box": [0.6, 0.1, 0.9, 0.5]}]}
    x, _ = info.detector.prepare(image)
    rows = backend.detect(image, x, truth)["detections"]
    assert rows.shape == (1, 1, 6) and np.allclose(rows[0, 0, :4], [20, 20, 100, 60]), \
        "the hand's box from the frame's truth, in frame pixels"


def test_builtin_detector_errors(capsys):
    assert main(["run", "--model", "faces", "--backend", "onnx", "--source", "sim://crowd",
                 "--headless"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --model faces runs on mediapipe only, not --backend onnx"]


@pytest.mark.slow
def test_faces_in_the_crowd_and_in_close_up_photos(shared_data, tmp_path):
    """MediaPipe on drawn faces (recall measured, not assumed) and on real face photos that
    fill the frame, which the border retry finds."""
    pytest.importorskip("mediapipe")
    import shutil

    out = tmp_path / "crowd.jsonl"
    assert main(["run", "--model", "faces", "--source", "sim://crowd?seed=0&count=20", "--headless",
                 "--subject-provider", "mediapipe", "--json-out", str(out)]) == 0
    counts = Counts()
    for rec in map(json.loads, out.read_text().splitlines()):
        found = rec["results"][0]["detections"]
        truth = [s["box"] for s in rec["truth"]["subjects"] if s["kind"] == "face"]
        counts.add(np.array([d["box"] for d in found]), [d["score"] for d in found], np.array(truth))
    assert counts.recall >= 0.85 and counts.precision >= 0.9, counts
    photos = tmp_path / "lfw"
    photos.mkdir()
    for p in sorted((shared_data / "faces_mtfl/images/lfw_5590").glob("*.jpg"))[:12]:
        shutil.copy(p, photos / p.name)
    out = tmp_path / "lfw.jsonl"
    assert main(["run", "--model", "faces", "--source", str(photos), "--headless",
                 "--json-out", str(out)]) == 0
    found = [rec["results"][0]["counts"].get("face", 0) for rec in map(json.loads, out.read_text().splitlines())]
    assert sum(n >= 1 for n in found) >= 11, found


def test_boxes_and_counts_are_drawn():
    from edge_app.annotate import BoxAnnotator, Context, CountAnnotator, annotate

    frame = np.zeros((240, 320, 3), np.uint8)
    result = DetectionsResult(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), np.array([0.8], np.float32),
                              np.array([0]), ("hand",), np.array([7]))
    annotate(frame, [result], Context(), [BoxAnnotator(), CountAnnotator()])
    assert frame[60, 120:200].any() and frame[180, 120:200].any(), "box edges drawn"
    assert not frame[100:140, 140:180].any(), "inside left clear"
    assert frame[:40, :100].any(), "counts written top left"
    assert result.to_dict()["detections"][0]["track"] == 7


def test_detection_is_not_a_trainable_task(tmp_path):
    from edge_app.tasks.kinds import TASK_KINDS
    from edge_app.tasks.spec import load_task

    spec = tmp_path / "boxes.yaml"
    spec.write_text("name: boxes\nkind: detection\nclasses: [car]\n")
    with pytest.raises(UserError, match="'detection' models come from an ONNX file"):
        load_task(str(spec))
    with pytest.raises(UserError, match="not trained by edge-app"):
        TASK_KINDS["detection"].training()


def test_fixtures_command_writes_every_layout(tmp_path, capsys):
    assert fixtures.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == sorted(l + ".onnx" for l in fixtures.ROWS)
    assert (tmp_path / "ssd-labels.txt").read_text().splitlines()[0] == "BACKGROUND"


def test_crowd_options_are_checked():
    from edge_app.errors import SourceError
    from edge_app.sources import open_source

    with pytest.raises(SourceError, match="unknown option 'label'; this source takes .*hold"):
        open_source("sim://crowd?label=hand")


def test_bench_a_builtin_detector(tmp_path):
    pytest.importorskip("mediapipe")
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "faces", "--frames", "5", "--warmup", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["mediapipe"] and rows[0]["decode_ms"]["p50"] >= 0
