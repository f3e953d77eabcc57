"""The training-time robustness report (train/robustness.py) on the simulator: the validation
images under the camera shifts, misses counted, subjects of shifted images cached, and the
leave-one-group-out score."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edge_app.subject.base import Subject, SubjectFinder
from edge_app.subject.providers import PROVIDERS

from helpers import capture_sim


class LitFinder(SubjectFinder):
    """Finds "the hand" (the same stored one each time) only in images bright enough to see."""

    name = "lit"
    hand: Subject = None   # type: ignore[assignment]
    calls = 0

    def find(self, image, truth=None):
        LitFinder.calls += 1
        if image.max() < 120:   # x0.35 exposure: nothing brighter than 90
            return None
        h, w = image.shape[:2]
        return Subject.from_dict(LitFinder.hand, (w, h))


def _job(root, monkeypatch, count=40, group=None, inp="landmarks"):
    from edge_app.tasks.spec import load_task
    from edge_app.tasks.train_config import build_config
    from edge_app.train.candidate import TrainJob
    from edge_app.train.labelled import load_labelled
    from edge_app.train.pipeline import resolve_device
    from edge_app.train.subjects import plan_input

    data = capture_sim("fingers", root / "data", count, 3)
    task = load_task("fingers")
    cfg = build_config(dict(task.train), {"input": inp, "mode": "fast", "views": 1, "group": group,
                                          "input_size": (64, 64), "workers": 0, "arch": "efficientnet_lite0"})
    ds = load_labelled(data, task, "auto", "train", False)
    plan, scan = plan_input(ds, task, cfg, False)
    stored = json.loads((data / "subjects.jsonl").read_text().splitlines()[0])
    LitFinder.hand = {k: v for k, v in stored.items() if k != "image"}
    monkeypatch.setitem(PROVIDERS, "lit", LitFinder)
    # shifted images carry no simulator truth: the "detector" of this plan is the lit finder
    plan = dataclasses.replace(plan, provider="lit")
    return TrainJob(ds, scan, plan, task, cfg, resolve_device("cpu"), root / "out", data,
                    progress=False, quiet=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("torch", reason="training needs torch (the train extra)")
    from edge_app.train.inputs.landmarks import LANDMARKS

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("robust")
    job = _job(root, mp)
    yield job, LANDMARKS.train(job), root, mp
    mp.undo()


def test_shifted_validation_images_count_misses_as_errors(trained):
    from edge_app.train.robustness import REPORT_SHIFTS, describe, robustness_report

    job, cand, root, mp = trained
    mp.setitem(PROVIDERS, "lit", LitFinder)
    report = robustness_report(cand, job, cache_dir=root / "cache")
    json.dumps(report)   # goes into bundle.json as it is
    assert report["images"] == len(cand.val.samples)
    assert list(report["shifts"]) == ["none"] + list(REPORT_SHIFTS)
    none = report["shifts"]["none"]
    assert none["accuracy"] == pytest.approx(cand.metrics["accuracy"]), "unshifted: the validation score"
    dark = report["shifts"]["dark"]
    assert dark["detection_rate"] == 0.0 and dark["accuracy"] == 0.0, "no hand seen: every image wrong"
    assert report["shifts"]["purple"]["detection_rate"] == 1.0
    assert "dark" in describe(report, job.task.task_kind.training())


def test_a_warm_report_renders_and_searches_nothing(trained, monkeypatch):
    from edge_app.train.robustness import robustness_report

    job, cand, root, mp = trained
    mp.setitem(PROVIDERS, "lit", LitFinder)
    first = robustness_report(cand, job, cache_dir=root / "warm")
    images = sorted((root / "warm" / "images").iterdir())
    stamps = [p.stat().st_mtime_ns for p in images]

    def no_detector(*a, **k):
        raise AssertionError("every shifted image was seen before")

    monkeypatch.setattr("edge_app.subject.providers.make_finder", no_detector)
    again = robustness_report(cand, job, cache_dir=root / "warm")
    assert again["shifts"] == first["shifts"]
    assert [p.stat().st_mtime_ns for p in sorted((root / "warm" / "images").iterdir())] == stamps


def test_at_most_max_images_with_every_class(trained):
    from edge_app.train.robustness import robustness_report

    job, cand, root, mp = trained
    mp.setitem(PROVIDERS, "lit", LitFinder)
    report = robustness_report(cand, job, shifts=("blur",), max_images=5, cache_dir=root / "small")
    assert report["images"] == 5 and list(report["shifts"]) == ["none", "blur"]
    assert report["shifts"]["none"]["n"] == 5


def test_points_move_with_a_far_camera():
    """Keypoint labels follow the picture into the far frame (they are the model's targets)."""
    from edge_app.train.shifts import SHIFTS

    pts = np.array([[0.5, 0.5], [0.0, 0.0]])
    moved = SHIFTS["far"].map_points(pts, (300, 300))
    assert np.allclose(moved[0], [0.5, 0.5]) and np.allclose(moved[1], [1 / 3, 1 / 3])


@pytest.mark.slow
def test_leave_one_group_out_when_groups_are_named(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="training needs torch (the train extra)")
    from edge_app.train.inputs.landmarks import LANDMARKS
    from edge_app.train.robustness import robustness_report

    job = _job(tmp_path, monkeypatch, count=30, group=r"_([0-9a-f])")
    cand = LANDMARKS.train(job)
    report = robustness_report(cand, job, shifts=(), cache_dir=tmp_path / "cache")
    logo = report["leave_one_group_out"]
    assert 2 <= len(logo["folds"]) <= 5 and logo["groups"] >= len(logo["folds"])
    assert sum(f["images"] for f in logo["folds"]) == len(job.ds.samples)
    assert 0.0 <= logo["metrics"]["accuracy"] <= 1.0
    no_group = robustness_report(cand, dataclasses.replace(job, cfg=dataclasses.replace(job.cfg, group=None)),
                                 shifts=(), cache_dir=tmp_path / "cache")
    assert "leave_one_group_out" not in no_group


@pytest.mark.slow
def test_the_report_works_for_a_cnn_on_crops(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="training needs torch (the train extra)")
    """Every input kind through its training side: here the crop CNN, which reads the shifted
    image files themselves."""
    from edge_app.train.inputs.crop import CROP
    from edge_app.train.robustness import robustness_report

    job = _job(tmp_path, monkeypatch, count=20, inp="crop")
    cand = CROP.train(job)
    report = robustness_report(cand, job, shifts=("dark", "blur"), cache_dir=tmp_path / "cache")
    assert report["shifts"]["dark"]["detection_rate"] == 0.0
    assert report["shifts"]["blur"]["detection_rate"] == 1.0
    assert 0.0 <= report["shifts"]["blur"]["accuracy"] <= 1.0


def test_training_prints_the_report_and_keeps_it_in_the_bundle(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch", reason="training needs torch (the train extra)")
    """``edge-app train`` reports the kept model under the shifts, and the bundle carries the
    report (read back by the typed bundle)."""
    from edge_app.model.bundle import read_bundle

    from helpers import fast_train, train_bundle

    monkeypatch.setenv("EDGE_APP_CACHE", str(tmp_path / "cache"))
    data = capture_sim("fingers", tmp_path / "data", 110, 3)
    # the simulator's truth finds nothing in a shifted picture: quick, and every shift a miss
    out = train_bundle("fingers", data, tmp_path / "b", "--subject-provider", "truth", *fast_train(64, 1))
    printed = capsys.readouterr().out
    assert "robustness, misses counted" in printed and "dark 0.0% (found 0%)" in printed
    stored = json.loads((out / "bundle.json").read_text())["robustness"]
    assert stored["images"] >= 20 and stored["shifts"]["none"]["detection_rate"] == 1.0
    assert read_bundle(out).robustness == stored
    # a handful of validation images makes no report worth reading: said, and none kept
    few = capture_sim("fingers", tmp_path / "few", 20, 4)
    out = train_bundle("fingers", few, tmp_path / "b2", "--subject-provider", "truth", *fast_train(64, 1))
    assert "robustness report skipped" in capsys.readouterr().out
    assert read_bundle(out).robustness == {}


def test_a_report_that_cannot_be_made_does_not_fail_training(trained, monkeypatch, caplog):
    from edge_app.errors import UserError
    from edge_app.train import robustness

    job, cand, root, mp = trained

    def no_detector(*a, **k):
        raise UserError("no hand detector here")

    monkeypatch.setattr(robustness, "robustness_report", no_detector)
    monkeypatch.setattr(robustness, "MIN_IMAGES", 1)
    assert robustness.training_report(cand, job) == {}
    assert "robustness report skipped: no hand detector here" in caplog.text
