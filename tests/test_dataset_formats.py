"""Each layout users already have is read, detected, imported and summarised correctly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.dataset.formats import ReadOptions, detect_format, read_dataset
from edge_app.dataset.importer import import_dataset
from edge_app.dataset.info import summarize
from edge_app.dataset.match import match_task
from edge_app.errors import DatasetError
from edge_app.tasks.spec import load_task

from helpers import write_class_tree, write_image, write_truncated_jpeg


def test_folders_with_license_corrupt_and_truncated_files(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"thumbs_up": 3, "thumbs_down": 2})
    (root / "LICENSE").write_text("MIT")
    (root / "thumbs_up" / "notes.txt").write_text("hi")
    (root / "thumbs_up" / "corrupt.jpg").write_bytes(b"\xff\xd8garbage")
    write_truncated_jpeg(root / "thumbs_down" / "cut.jpg")
    assert detect_format(root) == "folders"
    ds = read_dataset(root).verify()
    assert ds.counts() == {"thumbs_down": 2, "thumbs_up": 3}, "bad files are never counted"
    problems = sorted(p.message for p in ds.problems)
    assert any("truncated JPEG" in p for p in problems)
    assert any("decode" in p or "truncated" in p for p in problems) and len(problems) == 2
    assert any("LICENSE" in n for n in ds.notes) and any("notes.txt" in n for n in ds.notes)


def test_course_regression_layout(tmp_path):
    root = tmp_path / "course_xy"
    write_image(root / "nose" / "120_80_ab12.jpg", 224, 224)
    write_image(root / "left_eye" / "150_60_cd34.jpg", 224, 224)
    assert detect_format(root) == "course"
    ds = read_dataset(root).verify()
    assert ds.kind == "keypoints" and set(ds.labels) == {"nose", "left_eye"}
    nose = next(s for s in ds.samples if "ab12" in s.path.name)
    pts = nose.normalized_points(ds.coords)
    i = ds.labels.index("nose")
    assert np.allclose(pts[i], (120 / 224, 80 / 224))
    assert np.isnan(pts[1 - i]).all(), "the other point is missing, not zero"


def test_course_classification_layout_reads_as_classes(tmp_path):
    root = write_class_tree(tmp_path / "course_cls", {"thumbs_up": 2, "thumbs_down": 2})
    ds = read_dataset(root, "course")
    assert ds.kind == "classification" and ds.format == "course"


def test_jetson_inference_layout_keeps_splits(tmp_path):
    root = tmp_path / "ji"
    (root).mkdir()
    (root / "labels.txt").write_text("thumbs_down\nthumbs_up\n")
    write_class_tree(root / "train", {"thumbs_up": 3, "thumbs_down": 3})
    write_class_tree(root / "val", {"thumbs_up": 1, "thumbs_down": 1})
    write_class_tree(root / "test", {"stray": 1})
    assert detect_format(root) == "jetson-inference"
    ds = read_dataset(root).verify()
    assert ds.labels == ("thumbs_down", "thumbs_up")
    assert sorted(s.split for s in ds.samples).count("val") == 2
    assert any("labels.txt" in p.message for p in ds.problems)
    out = tmp_path / "imported"
    result = import_dataset(root, out, task=load_task("thumbs"), progress=False)
    assert result.counts == {"thumbs_up": 4, "thumbs_down": 4}
    again = read_dataset(out)
    assert sorted(s.split for s in again.samples).count("val") == 2, "split survives the import"


def test_keypoint_csv_pixels_missing_cells_and_extra_columns(tmp_path):
    root = tmp_path / "kp"
    write_image(root / "imgs" / "a.jpg", 100, 50)
    write_image(root / "imgs" / "b.jpg", 100, 50)
    (root / "points.csv").write_text(
        "image,nose_x,nose_y,left_eye_x,left_eye_y,right_eye_x,right_eye_y,chin_x,chin_y\n"
        "imgs/a.jpg,50,25,70,20,30,20,50,45\n"
        "imgs/b.jpg,40,30,,,20,22,1,1\n"
        "imgs/missing.jpg,1,1,1,1,1,1,1,1\n"
        "imgs/a.jpg,oops,1,1,1,1,1,1,1\n")
    assert detect_format(root) == "csv"
    ds = read_dataset(root).verify()
    assert len(ds.samples) == 2 and len(ds.problems) == 2
    matched = match_task(ds, load_task("face"), purpose="train")
    assert matched.labels == ("nose", "left_eye", "right_eye")
    assert any("chin" in n for n in matched.notes)
    b = next(s for s in matched.samples if s.path.name == "b.jpg")
    pts = b.normalized_points(ds.coords)
    assert np.allclose(pts[0], (0.4, 0.6)) and np.isnan(pts[1]).all()
    out = tmp_path / "out"
    import_dataset(root, out, task=load_task("face"), progress=False)
    imported = read_dataset(out)
    assert imported.coords == "normalized"
    got = next(s for s in imported.samples if "b" in s.path.stem)
    assert np.allclose(got.points[0], (0.4, 0.6)) and np.isnan(got.points[1]).all()


def test_image_sided_names_are_swapped_to_the_subject(tmp_path):
    root = tmp_path / "kp"
    rows = ["image,left_eye_x,left_eye_y,right_eye_x,right_eye_y"]
    for i in range(6):
        write_image(root / f"{i}.jpg", 100, 100)
        rows.append(f"{i}.jpg,30,40,70,40")   # "left" here is the image's left
    (root / "k.csv").write_text("\n".join(rows) + "\n")
    as_is = summarize(read_dataset(root).verify())
    assert any("--sides image" in n for n in as_is["notes"]), "the tool spots image-sided labels"
    ds = read_dataset(root, opts=ReadOptions(sides="image")).verify()
    left = ds.labels.index("left_eye")
    assert np.allclose(ds.samples[0].points[left], (70, 40)), "subject's left eye is image right"
    assert not any("look image-sided" in n for n in summarize(ds)["notes"])


def test_training_needs_every_class_eval_takes_a_subset(tmp_path):
    root = write_class_tree(tmp_path / "f", {"0": 1, "1": 2, "2": 2, "3": 1, "4": 1})
    ds = read_dataset(root).verify()
    task = load_task("fingers")
    with pytest.raises(DatasetError, match="'0' are not classes of task 'fingers'"):
        match_task(ds, task, "train")
    evaluated = match_task(ds, task, "eval")
    assert evaluated.counts() == {"1": 2, "2": 2, "3": 1, "4": 1, "5": 0}
    assert any("skipped class folder" in n and "0" in n for n in evaluated.notes)
    assert any("no images for class(es): 5" in n for n in evaluated.notes)
    (root / "0" / "0_0.jpg").unlink()
    (root / "0").rmdir()
    with pytest.raises(DatasetError, match="'5' of task 'fingers' have no images"):
        match_task(ds.__class__(ds.root, ds.format, ds.kind, tuple(c for c in ds.labels if c != "0"),
                                [s for s in ds.samples if s.label != "0"]), task, "train")


def test_wrong_kind_and_nested_tree_errors(tmp_path):
    root = write_class_tree(tmp_path / "people" / "alice", {"thumbs_up": 1, "thumbs_down": 1})
    with pytest.raises(DatasetError, match="holds folders of images.*alice"):
        read_dataset(tmp_path / "people")
    with pytest.raises(DatasetError, match="classification dataset.*keypoints"):
        match_task(read_dataset(root), load_task("face"))
    with pytest.raises(DatasetError, match="no such folder"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        read_dataset(tmp_path / "empty")


def test_native_metadata_errors_name_the_key(tmp_path):
    root = write_class_tree(tmp_path / "ds", {"a": 1, "b": 1})
    (root / "dataset.yaml").write_text("format: edge-app\nkind: classification\nclases: [a, b]\n")
    with pytest.raises(DatasetError, match="dataset.yaml: key 'clases'.*did you mean 'classes'"):
        read_dataset(root)


def test_import_without_task_makes_names_safe(tmp_path):
    root = write_class_tree(tmp_path / "src", {"thumbs up": 1, "thumbs down": 1})
    result = import_dataset(root, tmp_path / "out", progress=False)
    assert set(result.counts) == {"thumbs_up", "thumbs_down"}
    assert (tmp_path / "out" / "thumbs_up").is_dir()
    with pytest.raises(DatasetError, match="not empty"):
        import_dataset(root, tmp_path / "out", progress=False)


# -- the real photos beside the project ----------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.parametrize("folder,task,expected", [
    ("thumbs/dharshini", "thumbs", {"thumbs_up": 56, "thumbs_down": 58}),
    ("thumbs/leticiacechinel", "thumbs", {"thumbs_up": 19, "thumbs_down": 21}),
    ("fingers_set1", "fingers", {"1": 311, "2": 317, "3": 332, "4": 235, "5": 244}),
    ("fingers_signdigits", None, {"0": 205, "1": 206, "2": 206, "3": 206, "4": 207, "5": 207}),
    ("emotions_ckplus", None, {"anger": 135, "contempt": 54, "disgust": 177, "fear": 75,
                               "happy": 207, "sadness": 84, "surprise": 249}),
])
def test_import_shared_classification_data(shared_data, tmp_path, folder, task, expected):
    result = import_dataset(shared_data / folder, tmp_path / "out",
                            task=load_task(task) if task else None, progress=False)
    assert result.counts == expected
    assert not result.problems
    back = read_dataset(tmp_path / "out").verify()
    assert back.counts() == expected and back.format == "edge-app"


@pytest.mark.slow
@pytest.mark.shared_data
def test_import_shared_faces(shared_data, tmp_path):
    result = import_dataset(shared_data / "faces_mtfl", tmp_path / "faces", task=load_task("face"),
                            progress=False)
    assert result.images == 7146 and not result.problems
    ds = read_dataset(tmp_path / "faces")
    pts = np.stack([s.points for s in ds.samples])
    assert np.nanmin(pts) >= 0 and np.nanmax(pts) <= 1
    left, right = ds.labels.index("left_eye"), ds.labels.index("right_eye")
    assert np.mean(pts[:, left, 0] > pts[:, right, 0]) > 0.95, "left_eye is on the image's right"
    first = json.loads(json.dumps(summarize(ds.verify())))
    assert first["counts"]["nose"] == 7146 and first["sizes"] == {"80x80": 7146}
