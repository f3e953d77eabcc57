"""Turned cameras (issue 21): ``?rotate=`` on every source, ``rotate:`` in dataset.yaml honoured
by every reader, and the camera check that finds the turn from faces and open hands, in
doctor, capture and beside a live preview."""
from __future__ import annotations

import numpy as np
import pytest

from edge_app.camera.check import CameraCheck, CameraWatch, check_frames, check_source
from edge_app.camera.rotation import combine, inverse, rotate_image, rotate_normalized, rotate_truth
from edge_app.cli import main
from edge_app.dataset.formats import read_dataset
from edge_app.errors import DatasetError, SourceError
from edge_app.sources import FrameReader, open_source

TURNS = [90, 180, 270]
FLIP_METHOD = {90: 3, 180: 2, 270: 1}   # nvvidconv: 3 clockwise, 2 rotate-180, 1 counterclockwise


def turned_camera(monkeypatch, turn):
    """Make every simulated camera a camera mounted turned: its picture (and ground truth)
    comes turned clockwise by ``turn``, with nothing declared."""
    from edge_app.sources.sim import SimSource

    real = SimSource._grab

    def grab(self):
        got = real(self)
        if got is None:
            return None
        image, extras = got
        return rotate_image(image, turn), dict(extras, truth=rotate_truth(extras["truth"], turn))

    monkeypatch.setattr(SimSource, "_grab", grab)


def frames_of(uri, n):
    src = open_source(uri)
    src.open()
    try:
        return [src.read() for _ in range(n)]
    finally:
        src.close()


# -- the turn itself -------------------------------------------------------------------------
@pytest.mark.parametrize("turn", TURNS)
def test_points_follow_the_pixels(turn):
    image = np.zeros((40, 60, 3), np.uint8)
    image[10, 45] = 255   # x=45, y=10
    out = rotate_image(image, turn)
    y, x = np.argwhere(out[..., 0] == 255)[0]
    h, w = out.shape[:2]
    px = rotate_normalized([(45.5 / 60, 10.5 / 40)], turn)[0] * (w, h)
    assert abs(px[0] - (x + 0.5)) < 1e-6 and abs(px[1] - (y + 0.5)) < 1e-6
    assert (rotate_image(out, inverse(turn)) == image).all(), "lossless both ways"
    assert combine(turn, inverse(turn)) == 0


# -- sources ---------------------------------------------------------------------------------
@pytest.mark.parametrize("turn", TURNS)
def test_sources_turn_frames_and_ground_truth(turn):
    upright = frames_of("sim://face?seed=4", 2)
    turned = frames_of(f"sim://face?seed=4&rotate={turn}", 2)
    for a, b in zip(upright, turned):
        assert (b.image == rotate_image(a.image, turn)).all()
        assert b.rotation == turn and a.rotation == 0
        for name, point in a.truth["points"].items():
            assert np.allclose(b.truth["points"][name], rotate_normalized(point, turn), atol=1e-4)
        lm = np.asarray(a.truth["subject"]["landmarks"])
        assert np.allclose(b.truth["subject"]["landmarks"], rotate_normalized(lm, turn), atol=1e-4)
    src = open_source(f"sim://face?rotate={turn}")
    src.open()
    src.read()
    assert ("480x640" if turn % 180 else "640x480") in src.describe()
    assert f"turned {turn} degrees" in src.describe()


@pytest.mark.parametrize("turn", TURNS)
def test_rotate_on_a_file_source(tmp_path, turn):
    from helpers import write_image

    write_image(tmp_path / "a.png", w=64, h=32)
    frame = frames_of("{}?rotate={}".format(tmp_path / "a.png", turn), 1)[0]
    assert frame.image.shape[:2] == ((64, 32) if turn % 180 else (32, 64))


@pytest.mark.parametrize("uri,match", [
    ("sim://face?rotate=45", "rotate '45' is not a quarter turn; use 90, 180 or 270"),
    ("usb:0?rotate=left", "rotate 'left' is not a quarter turn"),
    ("csi://0?rotate=90&flip=3", "flip=3 already turns the picture and rotate=90 turns it again"),
    ("csi://0?flip=9", "flip 9 is not an nvvidconv flip-method"),
])
def test_bad_rotation_is_one_line(uri, match):
    with pytest.raises(SourceError, match=match) as err:
        open_source(uri)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("turn", TURNS)
def test_csi_turns_with_nvvidconv_flip_method(turn):
    cam = open_source(f"csi://0?width=1280&height=720&rotate={turn}")
    assert f"flip-method={FLIP_METHOD[turn]} " in cam.pipeline
    out = "width=720, height=1280" if turn % 180 else "width=1280, height=720"
    assert f"video/x-raw, {out}, format=BGRx" in cam.pipeline, "nvvidconv delivers it turned"
    assert "width=1280, height=720, framerate" in cam.pipeline, "the sensor mode is unchanged"
    assert cam._software_rotation() == 0, "no second turn on the CPU"
    cam.correct(90)   # a correction found later is done in software
    assert cam._software_rotation() == 90 and cam.total_rotation == (turn + 90) % 360


@pytest.mark.parametrize("flip,turn,method", [(4, 90, 5), (4, 270, 7), (6, 180, 4), (4, 180, 6)])
def test_csi_mirror_then_turn(flip, turn, method):
    cam = open_source(f"csi://0?flip={flip}&rotate={turn}")
    assert f"flip-method={method} " in cam.pipeline


# -- datasets --------------------------------------------------------------------------------
def _turned_dataset(root, turn, n=3):
    """A class-folder dataset as a turned camera records it: PNG files turned by ``turn``,
    dataset.yaml declaring the turn that makes them upright; the upright images returned."""
    import cv2

    uprights = {}
    for i, frame in enumerate(frames_of("sim://face?seed=5&width=96&height=64", n)):
        path = root / ("a" if i % 2 else "b") / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rotate_image(frame.image, turn))
        uprights[path.name] = frame.image
    (root / "dataset.yaml").write_text(
        f"kind: classification\nclasses: [a, b]\nrotate: {inverse(turn)}\n")
    return uprights


@pytest.mark.parametrize("turn", TURNS)
def test_dataset_rotate_is_honoured_by_training_loading(tmp_path, turn):
    pytest.importorskip("torch")
    from edge_app.train.torch_data import load_sample_image

    uprights = _turned_dataset(tmp_path, turn)
    ds = read_dataset(tmp_path).verify()
    assert {s.size for s in ds.samples} == {(96, 64)}, "sizes are the upright picture's"
    assert any(f"turned clockwise by {inverse(turn)}" in n for n in ds.notes)
    for sample in ds.samples:
        assert (load_sample_image(sample) == uprights[sample.path.name]).all()
    # A folder source on the dataset shows it as training sees it; ?rotate= turns further.
    frame = frames_of(str(tmp_path / "a"), 1)[0]
    assert (frame.image == uprights["img1.png"]).all()


def test_bad_rotate_in_dataset_yaml_is_one_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "dataset.yaml").write_text("kind: classification\nclasses: [a]\nrotate: 45\n")
    with pytest.raises(DatasetError, match="rotate.*not a quarter turn") as err:
        read_dataset(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("turn", TURNS)
def test_capture_into_a_dataset_declaring_rotate_stores_alike(tmp_path, turn):
    """A dataset recorded from a turned camera (rotate: declared) gets new upright frames
    stored as its other images are, so reading turns them all alike; points stay upright."""
    from edge_app.capture.session import CaptureSession
    from edge_app.dataset.turn import set_rotation
    from edge_app.dataset.verify import read_image
    from edge_app.tasks.spec import load_task

    task = load_task("face")
    CaptureSession(task, tmp_path).close()
    set_rotation(tmp_path, turn)
    session = CaptureSession(task, tmp_path)
    frame = frames_of("sim://face?seed=6&width=96&height=64", 1)[0]
    assert session.save_truth(frame)
    session.close()
    session.check()
    ds = read_dataset(tmp_path).verify()
    (sample,) = ds.samples
    stored, _ = read_image(sample.path, rotate=0)
    upright, _ = read_image(sample.path)
    assert stored.shape[:2] == ((96, 64) if turn % 180 else (64, 96)), "stored as the camera delivers"
    assert upright.shape[:2] == (64, 96)
    err = np.abs(upright.astype(int) - frame.image).mean()
    assert err < 0.5 * np.abs(upright.astype(int) - rotate_image(frame.image, 180)).mean(), \
        "read back upright (JPEG aside)"
    assert np.allclose(sample.points[0], frame.truth["points"]["nose"], atol=1e-4)


# -- the camera check ------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["face", "fingers"])
@pytest.mark.parametrize("turn", TURNS)
def test_camera_check_finds_the_turn(task, turn):
    source = open_source(f"sim://{task}?seed=7&rotate={turn}")
    with FrameReader(source) as reader:
        result = check_source(reader, seconds=20, frames=200)
    assert result.estimate.rotation == inverse(turn), result.line()
    assert result.needed == 0 and result.status == "turned"
    assert "drop rotate=" in result.fix() and f"sim://{task}?seed=7'" in result.fix()


def test_camera_check_on_an_upright_camera_says_so():
    with FrameReader(open_source("sim://face?seed=8")) as reader:
        result = check_source(reader, seconds=20, frames=200)
    assert result.status == "upright" and result.fix() == ""
    assert result.report.frames < 200, "it stops once the answer is clear"


def test_camera_check_unknown_on_too_little_evidence():
    check = CameraCheck(provider="truth")
    frames = [(f.image, f.truth) for f in frames_of("sim://face?rotate=90", 3)]
    est = check_frames(frames, check, 3).estimate
    assert est.rotation is None and "8 needed" in est.why
    # Fists (thumbs up or down) say nothing about up: unknown, however many.
    with FrameReader(open_source("sim://thumbs?seed=1")) as reader:
        result = check_source(reader, seconds=20, frames=60)
    assert result.status == "unknown" and result.report.frames == 60
    assert "show a face" in result.fix()


def test_camera_check_split_evidence_is_unknown():
    from edge_app.camera.check import RotationVote
    from edge_app.subject.base import Subject

    face = frames_of("sim://face?seed=9", 1)[0]
    vote = RotationVote()
    for turn in (0, 90) * 6:
        truth = rotate_truth(face.truth, turn)
        size = (640, 480) if turn % 180 == 0 else (480, 640)
        vote.add(Subject.from_dict(truth["subject"], size))
    assert vote.result().rotation is None and vote.result().why == "the evidence is split"


# -- doctor, capture, the studio's watch -----------------------------------------------------
@pytest.fixture
def no_machine_checks(monkeypatch):
    monkeypatch.setattr("edge_app.device.doctor.CHECKS", [])


@pytest.mark.parametrize("turn", TURNS)
def test_doctor_source_reports_the_turn_and_how_to_declare_it(monkeypatch, capsys, no_machine_checks, turn):
    turned_camera(monkeypatch, turn)
    assert main(["doctor", "--source", "sim://face?seed=3", "--seconds", "20"]) == 0
    out = capsys.readouterr().out
    need = inverse(turn)
    assert f"WARN  rotation     turned: needs rotate={need}" in out
    assert f"--source 'sim://face?seed=3&rotate={need}'" in out
    assert main(["doctor", "--source", f"sim://face?seed=3&rotate={need}"]) == 0
    out = capsys.readouterr().out
    assert f"OK    rotation     upright with rotate={need} as given" in out


def test_doctor_source_errors_are_lines(capsys, no_machine_checks):
    assert main(["doctor", "--source", "sim://face?rotate=45"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  source" in out and "not a quarter turn" in out
    assert main(["doctor", "--source", "sim://thumbs", "--frames", "30"]) == 0
    assert "INFO  rotation     unknown:" in capsys.readouterr().out


@pytest.mark.parametrize("turn", TURNS)
def test_capture_finds_and_keeps_the_correction(tmp_path, monkeypatch, caplog, turn):
    import logging

    turned_camera(monkeypatch, turn)
    out = tmp_path / "face"
    with caplog.at_level(logging.INFO):
        assert main(["capture", "--task", "face", "--source", "sim://face?seed=2", "--headless",
                     "--count", "6", "--out", str(out), "--no-progress"]) == 0
    assert f"needs rotate={inverse(turn)}" in caplog.text
    ds = read_dataset(out).verify()
    assert len(ds.samples) == 6 and {s.size for s in ds.samples} == {(640, 480)}, "saved upright"
    names = list(ds.labels)
    for s in ds.samples:   # the nose is below both eyes: upright labels too
        nose, left, right = (s.points[names.index(n)] for n in ("nose", "left_eye", "right_eye"))
        assert nose[1] > left[1] and nose[1] > right[1]
    assert "rotate" not in (out / "dataset.yaml").read_text(), "upright files need no declaration"


def test_capture_camera_check_off_or_declared(tmp_path, monkeypatch, caplog):
    import logging

    turned_camera(monkeypatch, 90)
    with caplog.at_level(logging.INFO):
        assert main(["capture", "--task", "face", "--source", "sim://face?rotate=270", "--headless",
                     "--count", "2", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
        assert main(["capture", "--task", "face", "--source", "sim://face", "--headless",
                     "--camera-check", "0", "--count", "2", "--out", str(tmp_path / "b"),
                     "--no-progress"]) == 0
    assert "rotate=270 given with the source" in caplog.text and "off (--camera-check 0)" in caplog.text
    assert {s.size for s in read_dataset(tmp_path / "a").verify().samples} == {(640, 480)}
    assert {s.size for s in read_dataset(tmp_path / "b").verify().samples} == {(480, 640)}, "as delivered"


@pytest.mark.parametrize("turn", TURNS)
def test_camera_watch_keeps_the_correction(monkeypatch, turn):
    """The studio's hook: frames offered as shown; once found, the source turns them."""
    turned_camera(monkeypatch, turn)
    source = open_source("sim://fingers?seed=3")
    watch = CameraWatch(source, rate=1000.0, check=CameraCheck(provider="truth"))
    try:
        with FrameReader(source) as reader:
            for _ in range(400):
                frame = reader.get(timeout=5)
                if watch.done:
                    break
                watch.offer(frame.image, frame.truth)
                import time

                time.sleep(0.002)
            assert watch.done, watch.status()
            status = watch.status()
            assert status["state"] == "turned" and status["rotation"] == inverse(turn)
            assert status["applied"] == inverse(turn) and source.total_rotation == inverse(turn)
            # Frames read before the correction (a finite source's queue holds a few) say so.
            later = [reader.get(timeout=5) for _ in range(8)]
            first = [f.rotation for f in later].index(inverse(turn))
            assert first <= 3 and all(f.rotation == inverse(turn) for f in later[first:])
            assert all(f.image.shape[:2] == (480, 640) for f in later[first:]), "upright from now on"
            watch.offer(later[-1].image)   # done: offers are ignored, nothing is re-decided
            assert watch.status()["rotation"] == inverse(turn)
    finally:
        watch.close()


def test_capture_window_waits_for_the_camera_check(tmp_path):
    from edge_app.capture.session import CaptureSession
    from edge_app.capture.window import CaptureWindow
    from edge_app.sources.base import Frame
    from edge_app.tasks.spec import load_task

    class Checking:
        done = False

        def status(self):
            return {"line": "checking"}

        def offer(self, image, truth=None):
            pass

        def close(self):
            self.closed = True

    session = CaptureSession(load_task("thumbs"), tmp_path / "t")
    reader = FrameReader(open_source("sim://thumbs"))
    window = CaptureWindow(reader, session, interval=0.0, watch=Checking())
    window.frame = Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0)
    window.handle_key(ord(" "))
    assert "waits for the camera check" in window.message and session.writer.pending == 0
    window.handle_key(ord("k"))
    assert window.watch is None and "skipped" in window.message
    window.handle_key(ord(" "))
    session.close()
    assert session.writer.saved == 1


def test_another_tools_dataset_yaml_above_a_dataset_is_ignored(tmp_path):
    from edge_app.dataset.verify import read_image

    from helpers import write_image

    (tmp_path / "dataset.yaml").write_text("path: .\ntrain: images\nnames: [cat]\n")   # YOLO's
    path = write_image(tmp_path / "plain" / "a" / "x.png", w=64, h=32)
    image, problem = read_image(path)
    assert problem == "" and image.shape[:2] == (32, 64)


@pytest.mark.parametrize("turn", TURNS)
def test_declaring_rotate_later_keeps_labels_on_their_spot(tmp_path, monkeypatch, turn):
    """A keypoint dataset captured from a turned camera as delivered, then declared: the
    points and stored subjects turn with the picture (nose below the eyes, faces upright)."""
    import json

    from edge_app.camera.check import down_direction, turn_for
    from edge_app.dataset.meta import read_meta
    from edge_app.dataset.turn import set_rotation
    from edge_app.subject.base import Subject

    turned_camera(monkeypatch, turn)
    out = tmp_path / "face"
    assert main(["capture", "--task", "face", "--source", "sim://face?seed=2", "--headless",
                 "--camera-check", "0", "--count", "4", "--out", str(out), "--no-progress"]) == 0
    assert set_rotation(out, inverse(turn)) == 8, "4 label rows and 4 subject rows turned"
    assert read_meta(out)["rotate"] == inverse(turn)
    ds = read_dataset(out).verify()
    assert {s.size for s in ds.samples} == {(640, 480)}
    nose, left, right = (ds.labels.index(n) for n in ("nose", "left_eye", "right_eye"))
    for s in ds.samples:
        assert s.points[nose][1] > s.points[left][1] and s.points[nose][1] > s.points[right][1]
    for line in (out / "subjects.jsonl").read_text().splitlines():
        subject = Subject.from_dict(json.loads(line), (640, 480))
        assert turn_for(down_direction(subject)) == 0
    assert set_rotation(out, 0) == 8 and "rotate" not in read_meta(out)
    assert {s.size for s in read_dataset(out).verify().samples} == {(480, 640) if turn % 180 else (640, 480)}
    with pytest.raises(DatasetError, match="not a quarter turn"):
        set_rotation(out, 45)


def test_a_declared_turn_cut_off_midway_is_finished_not_repeated(tmp_path, monkeypatch):
    """set_rotation killed after turning the labels and before the subjects: the rerun turns
    only what is left, and a different turn waits until it is finished."""
    import json

    from edge_app.dataset import turn as turn_module
    from edge_app.dataset.meta import read_meta

    out = tmp_path / "face"
    assert main(["capture", "--task", "face", "--source", "sim://face?seed=2", "--headless",
                 "--camera-check", "0", "--count", "3", "--out", str(out), "--no-progress"]) == 0
    labels, subjects = (out / "labels.csv").read_text(), (out / "subjects.jsonl").read_text()

    def killed(root, delta):
        raise KeyboardInterrupt

    real = turn_module._turn_subjects
    monkeypatch.setattr(turn_module, "_turn_subjects", killed)
    with pytest.raises(KeyboardInterrupt):
        turn_module.set_rotation(out, 90)
    assert (out / "labels.csv").read_text() != labels and "rotate" not in read_meta(out)
    assert json.loads((out / turn_module.PENDING).read_text())["done"] == ["labels"]
    with pytest.raises(DatasetError, match="cut off"):
        turn_module.set_rotation(out, 180)
    monkeypatch.setattr(turn_module, "_turn_subjects", real)
    assert turn_module.set_rotation(out, 90) == 3, "only the subjects were left"
    assert read_meta(out)["rotate"] == 90 and not (out / turn_module.PENDING).exists()
    assert turn_module.set_rotation(out, 0) == 6
    assert (out / "labels.csv").read_text().splitlines()[1:] != [] and \
        (out / "subjects.jsonl").read_text() != ""
    back = [[round(float(v), 3) for v in line.split(",")[1:]] for line in (out / "labels.csv").read_text().splitlines()[1:]]
    first = [[round(float(v), 3) for v in line.split(",")[1:]] for line in labels.splitlines()[1:]]
    assert back == first, "turned once there and once back: where they started"
    assert subjects  # the subjects file existed to be turned


def test_the_studio_finds_a_turned_camera_and_shows_it_upright(monkeypatch, tmp_path):
    """The studio runs the camera check beside its preview; the turn it finds is applied to
    the source, and its state says so."""
    import time

    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    turned_camera(monkeypatch, 90)
    studio = Studio(load_task("fingers"), "sim://fingers?seed=3&fps=60", tmp_path / "data",
                    tmp_path / "runs").start()
    try:
        deadline = time.monotonic() + 300   # a hang guard, not a bound
        while studio.state()["camera_check"]["state"] == "checking" and time.monotonic() < deadline:
            time.sleep(0.1)
        check = studio.state()["camera_check"]
        assert check["state"] == "turned" and check["rotation"] == 270, check
        assert studio.source.total_rotation == 270 and "rotate=270" in check["fix"], check
    finally:
        studio.close()


def test_the_studio_skips_the_check_where_the_turn_is_declared(tmp_path):
    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    studio = Studio(load_task("thumbs"), "sim://thumbs?rotate=180", tmp_path / "data",
                    tmp_path / "runs").start()
    try:
        check = studio.state()["camera_check"]
        assert check["state"] == "skipped" and "rotate=180 given" in check["line"]
    finally:
        studio.close()


def test_a_turned_frame_keeps_the_raw_picture_for_collection():
    """A software turn keeps the device's picture beside the turned one (run --collect saves
    the raw frame; the review applies the same turn)."""
    from edge_app.runtime.collect import raw_image

    with FrameReader(open_source("sim://thumbs?seed=1&width=64&height=48&rotate=90")) as reader:
        frame = reader.get(timeout=5)
    raw, turn = raw_image(frame)
    assert raw.shape[:2] == (48, 64) and frame.image.shape[:2] == (64, 48) and turn == 90
    assert np.array_equal(rotate_image(raw, turn), frame.image)


def test_a_turn_declared_after_a_scan_finds_the_subjects_again(tmp_path):
    """The subject cache is keyed by the turn the dataset declares, not only by the file."""
    from edge_app.dataset.meta import meta_for, write_meta
    from edge_app.dataset.subjects import _signature
    from edge_app.tasks.spec import load_task

    image = tmp_path / "thumbs_up" / "a.jpg"
    image.parent.mkdir()
    import cv2

    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    write_meta(tmp_path, meta_for(load_task("thumbs")))
    before = _signature(image)
    write_meta(tmp_path, dict(meta_for(load_task("thumbs")), rotate=90))
    assert _signature(image) != before and _signature(image).endswith("|r90")


@pytest.mark.parametrize("turn", [0, 90])
def test_training_and_eval_warn_when_the_pictures_look_turned(tmp_path, turn):
    """A dataset from a turned camera that declares nothing: the hands found vote, and the
    warning names the rotate: to declare; nothing is turned on its own."""
    from edge_app.dataset.subjects import SubjectScan
    from edge_app.subject.base import Subject
    from edge_app.train.subjects import rotation_hint

    from helpers import write_class_tree

    ds = read_dataset(write_class_tree(tmp_path / "data", {"1": 15, "5": 15}))
    with FrameReader(open_source(f"sim://fingers?seed=5&rotate={turn}")) as reader:
        frames = [reader.get(timeout=5) for _ in range(len(ds.samples))]
    scan = SubjectScan([Subject.from_dict(f.truth["subject"], (f.image.shape[1], f.image.shape[0]))
                        for f in frames])
    hint = rotation_hint(ds, scan)
    if turn == 0:
        assert hint == ""
    else:
        assert "look turned" in hint and f"rotate: {inverse(turn)}" in hint, hint
        (tmp_path / "data/dataset.yaml").write_text("format: edge-app\nkind: classification\n"
                                                    "classes: ['1', '5']\nrotate: 90\n")
        assert rotation_hint(read_dataset(tmp_path / "data"), scan) == "", "declared: no warning"
