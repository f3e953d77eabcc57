"""Detector layouts: small ONNX graphs in each supported layout with known outputs, run through
ONNX Runtime, then recognised, decoded, suppressed and mapped back to the frame."""
from __future__ import annotations

import numpy as np
import pytest

from edge_app.detect import fixtures
from edge_app.detect.detector import Detector, read_labels
from edge_app.detect.geometry import InputMap, letterbox, stretch
from edge_app.detect.layouts import BUILTIN_LAYOUT, LAYOUTS, labels_from, recognise
from edge_app.detect.nms import nms
from edge_app.errors import UserError

FRAME = np.zeros((480, 640, 3), np.uint8)   # 640x480: letterboxed into 640x640 with 80 px bands


def _graph(outputs, size):
    """An ONNX model taking images [1, 3, H, W] whose outputs are the given constants."""
    pytest.importorskip("onnx")
    return fixtures.graph(outputs, size)


def _run(model, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(None, {"images": x})
    shapes = {o.name: o.shape for o in session.get_outputs()}
    return dict(zip(shapes, values)), shapes


def _detect(outputs, size, labels, **kw):
    model = _graph(outputs, size)
    layout_probe = {name: np.asarray(v).shape for name, v in outputs.items()}
    det = Detector(recognise(layout_probe), size, labels, **kw)
    x, where = det.prepare(FRAME)
    assert x.shape == (1, 3) + tuple(size) and x.dtype == np.float32
    raw, shapes = _run(model, x)
    assert recognise(shapes).name == det.layout.name, "recognised from the graph's own outputs"
    return det, det.decode(raw, where, (640, 480))


def test_ssd_mobilenet_from_jetson_inference():
    scores = [[[0.05, 0.90, 0.05], [0.10, 0.80, 0.10], [0.95, 0.03, 0.02], [0.10, 0.10, 0.80]]]
    boxes = [[[0.1, 0.2, 0.3, 0.4], [0.11, 0.21, 0.31, 0.41], [0.5, 0.5, 0.9, 0.9], [0.6, 0.1, 0.8, 0.3]]]
    det, found = _detect({"scores": scores, "boxes": boxes}, (300, 300), ["BACKGROUND", "hand", "face"])
    assert det.layout.name == "ssd" and det.layout.resize == "stretch"
    assert [(d.label, round(d.score, 2)) for d in found] == [("hand", 0.9), ("face", 0.8)], \
        "the overlapping hand is suppressed, the background anchor never becomes a box"
    assert np.allclose(found[0].box, (64, 96, 192, 192)), "normalised corners -> frame pixels"
    assert np.allclose(found[1].box, (384, 48, 512, 144))


def _yolo_rows():
    # cx, cy, w, h in 640x640 letterboxed pixels; objectness; two class scores.
    return np.array([[100, 180, 40, 60, 0.9, 0.1, 0.8],
                     [102, 182, 40, 60, 0.8, 0.1, 0.8],    # same class, overlapping: suppressed
                     [101, 181, 40, 60, 0.9, 0.7, 0.1],    # other class, same place: kept
                     [500, 300, 20, 20, 0.1, 0.9, 0.1]]   # below the threshold
                    + [[0] * 7] * 16)                       # real heads have thousands of rows


@pytest.mark.parametrize("layout", ["yolov5", "yolov8"])
def test_ultralytics_yolo_heads(layout):
    rows = _yolo_rows()
    if layout == "yolov8":   # no objectness; [1, 4 + C, N]
        rows = np.concatenate([rows[:, :4], rows[:, 5:] * rows[:, 4:5]], axis=1).T
    det, found = _detect({"output0": rows[None]}, (640, 640), ["person", "car"])
    assert det.layout.name == layout and det.layout.resize == "letterbox"
    assert [(d.label, round(d.score, 2)) for d in found] == [("car", 0.72), ("person", 0.63)]
    assert np.allclose(found[0].box, (80, 70, 120, 130)), "letterbox band (80 px) taken off"


def test_yolo_with_nms_inside_the_graph():
    rows = [[[80, 150, 120, 210, 0.9, 1], [300, 100, 340, 180, 0.5, 0], [0, 0, 0, 0, 0.0, 0]]]
    det, found = _detect({"output0": rows}, (640, 640), ["person", "car"], conf=0.3)
    assert det.layout.nms_inside
    assert [(d.label, d.class_id) for d in found] == [("car", 1), ("person", 0)]
    assert np.allclose(found[0].box, (80, 70, 120, 130))


def test_class_filter_and_threshold():
    _, found = _detect({"output0": _yolo_rows()[None]}, (640, 640), ["person", "car"], classes=[0])
    assert [d.label for d in found] == ["person"]
    _, found = _detect({"output0": _yolo_rows()[None]}, (640, 640), ["person", "car"], conf=0.7)
    assert [d.label for d in found] == ["car"]


def test_unsupported_layout_is_one_line_naming_what_was_found():
    with pytest.raises(UserError, match=r"outputs logits \[1, 1000\] are not a detector layout"):
        recognise({"logits": [1, 1000]})


def test_layout_from_shapes_with_named_dimensions():
    assert recognise({"output0": [1, 84, 8400]}).name == "yolov8"
    assert recognise({"output0": [1, 25200, 85]}).name == "yolov5"
    assert recognise({"output0": ["batch", 300, 6]}).name == "yolo-nms"
    assert recognise({"output0": [1, 25200, 6]}).name == "yolov5", "one class, no NMS: thousands of rows"
    assert recognise({"output0": [1, 25200, 6]}, {"args": "{'nms': True}"}).name == "yolo-nms"
    assert set(LAYOUTS) == {"ssd", "yolov5", "yolov8", "yolo-nms"}


# What each layout's outputs say about the classes of a 5-class model (None: they don't say).
CLASS_COUNTS = {"ssd": 6, "yolov5": 5, "yolov8": 5, "yolo-nms": None}   # SSD counts the background


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_in_the_registry_owns_its_recognition_classes_and_size(name):
    layout = LAYOUTS[name]
    heads = fixtures.heads(name, classes=5)
    shapes = {k: list(v.shape) for k, v in heads.items()}
    assert recognise(shapes) is layout
    assert [l.name for l in LAYOUTS.values() if l.matches(shapes, None)] == [name], \
        "no other layout claims these outputs"
    assert not BUILTIN_LAYOUT.matches(shapes, None)
    assert layout.class_count(shapes) == CLASS_COUNTS[name]
    dynamic = {k: ["batch"] + s[1:] for k, s in shapes.items()}   # a dynamic batch dimension
    assert recognise(dynamic) is layout and layout.class_count(dynamic) == CLASS_COUNTS[name]
    assert layout.default_size == fixtures.SIZE[name] and layout.outputs
    h, w = layout.default_size
    found = Detector(layout, (h, w), [str(i) for i in range(6)]).decode(heads, InputMap(1.0, 1.0, 0.0, 0.0), (w, h))
    want = [c + (1 if name == "ssd" else 0) for *_, c in fixtures.OBJECTS]
    assert sorted(d.class_id for d in found) == sorted(want), "its decoder reads its own outputs"


def test_labels_from_ultralytics_metadata_and_files(tmp_path):
    assert labels_from({"names": "{0: 'person', 1: 'bicycle'}"}) == ["person", "bicycle"]
    assert labels_from({}) == []
    path = tmp_path / "labels.txt"
    path.write_text("BACKGROUND\nhand\n\n")
    assert read_labels(path) == ["BACKGROUND", "hand"]
    with pytest.raises(UserError, match="no class names"):
        (tmp_path / "empty.txt").write_text("\n")
        read_labels(tmp_path / "empty.txt")


def test_letterbox_and_stretch_map_back_exactly():
    image = np.zeros((480, 640, 3), np.uint8)
    boxed, where = letterbox(image, (320, 320))
    assert boxed.shape == (320, 320, 3) and (where.pad_x, where.pad_y) == (0.0, 40.0)
    assert (boxed[:40] == 114).all() and (boxed[40:280] == 0).all()
    assert np.allclose(where.to_frame(np.array([[0, 40, 320, 280]])), [[0, 0, 640, 480]])
    _, where = stretch(image, (300, 300))
    assert np.allclose(where.to_frame(np.array([[150, 150, 300, 300]])), [[320, 240, 640, 480]])


def test_nms_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float64)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), iou=0.5)
    assert list(keep) == [0, 2]
    assert list(nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))) == []
