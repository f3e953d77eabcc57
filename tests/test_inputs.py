"""The input-kind registry (edge_app.model.inputs / train.inputs) and the input plan it validates."""
from __future__ import annotations

import numpy as np
import pytest

from edge_app.errors import UserError
from edge_app.model.info import ModelInfo
from edge_app.model.inputs import (
    INPUT_KINDS,
    LANDMARK_LAYOUT,
    InputPlan,
    auto_candidates,
    input_kind,
)
from edge_app.sources import open_source
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import feature_size
from edge_app.tasks.spec import load_task

KINDS = sorted(INPUT_KINDS)


def _frame_and_subject(task: str = "fingers"):
    src = open_source(f"sim://{task}?seed=3&width=320&height=240")
    src.open()
    frame = src.read()
    return frame.image, Subject.from_dict(frame.truth["subject"], (320, 240))


def _plan(kind) -> InputPlan:
    width = kind.feature_width("hand") if kind.landmarks else 0
    return InputPlan(kind.name, "hand" if kind.subject else None, features=width,
                     layout=LANDMARK_LAYOUT if kind.landmarks else 0)


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_feeds_its_graph(name):
    """The live input from a frame and its subject has the dummy batch's shapes, one array per
    graph input, and the model info of a plan of that kind names the same graph inputs."""
    kind = INPUT_KINDS[name]
    image, subject = _frame_and_subject()
    plan = _plan(kind)
    batch, where = kind.live_input(image, subject if kind.subject else None, (64, 48), plan.pad)
    dummy = kind.dummy(1, (64, 48), plan)
    got = (batch,) if isinstance(batch, np.ndarray) else tuple(batch)
    want = (dummy,) if isinstance(dummy, np.ndarray) else tuple(dummy)
    assert len(got) == len(want) == len(kind.graph_inputs)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert (where is not None) == kind.subject, "subject kinds map outputs back to the frame"
    info = ModelInfo("m", load_task("fingers"), (64, 48), None, None, "scores", plan.to_dict())
    assert info.input_names == kind.graph_inputs and info.input_kind is kind
    assert info.subject == ("hand" if kind.subject else None)
    assert InputPlan.from_dict(plan.to_dict(), "test") == plan


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_has_a_training_side(name):
    pytest.importorskip("torch")
    trainer = INPUT_KINDS[name].training()
    for method in ("view", "train", "build", "predict"):
        assert callable(getattr(trainer, method)), method


def test_a_subject_without_landmarks_gives_no_landmark_input():
    image, subject = _frame_and_subject()
    bare = Subject(subject.kind, subject.box)
    for kind in INPUT_KINDS.values():
        if kind.landmarks:
            assert kind.live_input(image, bare, (64, 64), 0.2) == (None, None)


def test_auto_candidates_follow_the_data_and_the_mode():
    names = lambda *a: [k.name for k in auto_candidates(*a)]  # noqa: E731
    assert names(True, "fast", False, "hand") == ["landmarks", "both", "crop"], \
        "no texture on hands: it would learn the training person's skin"
    assert names(True, "fast", False, "face") == ["landmarks", "texture", "both", "crop"]
    assert names(True, "full", False, "face") == ["landmarks", "texture", "crop"], "no second fine-tuned CNN"
    assert names(True, "fast", True, "face") == ["crop"], "--resume continues the crop CNN"
    assert names(False, "fast", False) == ["frame"]


def test_unknown_kind_and_malformed_plans_are_one_line():
    with pytest.raises(UserError, match="unknown input kind 'crops'.*did you mean 'crop'"):
        input_kind("crops", "--input")
    with pytest.raises(UserError, match="input_plan must be a mapping"):
        InputPlan.from_dict(["crop"], "bundle.json")
    with pytest.raises(UserError, match=r"input_plan\.pad has the wrong type"):
        InputPlan.from_dict({"input": "crop", "pad": "wide"}, "bundle.json")
    with pytest.raises(UserError, match=r"input_plan\.crops has the wrong type"):
        InputPlan.from_dict({"input": "crop", "crops": 1}, "bundle.json")
    assert InputPlan.from_dict(None, "old").input == "frame", "bundles from before the subject stage"
    assert InputPlan.from_dict({"input": "crop", "future_key": 1}, "x").input == "crop"


def test_landmark_layout_is_recorded_and_enforced():
    width = feature_size("hand")
    old = InputPlan.from_dict({"input": "landmarks", "subject": "hand", "features": width}, "v1")
    assert old.layout == 1, "plans saved before layouts were versioned used layout 1"
    with pytest.raises(UserError, match=f"layout 1, but this version computes {width} of layout {LANDMARK_LAYOUT}"):
        old.check_layout("v1")
    InputPlan("landmarks", "hand", features=width, layout=LANDMARK_LAYOUT, schema="hand").check_layout("m")
    InputPlan("landmarks", "face", features=feature_size("face_mesh"), layout=LANDMARK_LAYOUT,
              schema="face_mesh").check_layout("m")
    with pytest.raises(UserError, match="retrain it"):
        InputPlan("landmarks", "hand", features=width - 2, layout=LANDMARK_LAYOUT).check_layout("m")
    with pytest.raises(UserError, match=f"layout {LANDMARK_LAYOUT + 1}"):
        InputPlan("both", "hand", features=width, layout=LANDMARK_LAYOUT + 1).check_layout("m")
    InputPlan("crop", "hand").check_layout("m")   # no landmarks: nothing to check
    texture = INPUT_KINDS["texture"].feature_width("face_mesh")
    InputPlan("texture", "face", features=texture, layout=LANDMARK_LAYOUT, schema="face_mesh").check_layout("m")
    with pytest.raises(UserError, match="retrain it"):   # landmark features only: not a texture model
        InputPlan("texture", "face", features=feature_size("face_mesh"), layout=LANDMARK_LAYOUT,
                  schema="face_mesh").check_layout("m")


def test_choose_input_prefers_what_carries_to_other_people():
    """Within the validation noise the kind ranked most general wins; a clear win stays."""
    pytest.importorskip("torch")
    from edge_app.train.candidate import Candidate, View
    from edge_app.train.pipeline import choose_input

    kind = load_task("fingers").task_kind.training()
    face = load_task("face").task_kind.training()

    def cand(name, metrics, rate=1.0):
        view = View([], np.zeros(0), np.zeros((0, 2)))
        return Candidate(plan=InputPlan(name), model=None, arch="", weights="", input_size=(1, 1),
                         metrics=metrics, history=[], best_epoch=0, train_count=0, val=view,
                         found_rate=rate, timings={})

    def acc(a):
        return {"accuracy": a, "n": 120}

    def rmse(r):
        return {"rmse": r, "n": 50}

    def pick(scores, k=kind):
        return choose_input({n: cand(n, m) for n, m in scores.items()}, k)

    assert pick({"crop": acc(1.0), "landmarks": acc(1.0), "both": acc(1.0)}) == "landmarks"
    assert pick({"crop": acc(1.0), "landmarks": acc(119 / 120), "both": acc(1.0)}) == "landmarks"
    assert pick({"crop": acc(1.0), "landmarks": acc(0.9), "both": acc(0.995)}) == "both"
    assert pick({"crop": acc(0.95), "landmarks": acc(0.80)}) == "crop", "a clear winner stays"
    assert pick({"crop": rmse(0.02), "landmarks": rmse(0.03)}, face) == "crop"
    # misses count: landmarks found in half the images lose to a crop found everywhere
    assert choose_input({"crop": cand("crop", acc(0.9)), "landmarks": cand("landmarks", acc(1.0), 0.5)},
                        kind) == "crop"


def test_keypoint_splits_stratify_by_labelled_points_not_coordinates():
    """The course's layout labels one point per image (others NaN); coordinates outside 0..1
    or negative in face-local units must not break the split (they did: np.bincount)."""
    pytest.importorskip("torch")
    kind = load_task("face").task_kind.training()
    t = np.full((6, 3, 2), np.nan, np.float32)
    t[0:2, 0] = [-1.5, 0.3]      # nose only, negative local units
    t[2:4, 1] = [2.5, 7.0]       # left_eye only
    t[4:6] = 0.5                 # all three
    strata = kind.strata(t)
    assert strata == [1, 1, 2, 2, 7, 7]
    from edge_app.train.split import split_indices

    samples = [type("S", (), {"split": None, "path": None})() for _ in range(6)]
    tr, va = split_indices(samples, strata, 0.5, 0)
    assert len(va) == 3 and {strata[i] for i in va} == {1, 2, 7}


@pytest.mark.parametrize("scores, trained, kept", [
    ({"landmarks": 0.99}, ["landmarks"], "landmarks"),
    ({"landmarks": 0.80, "texture": 0.99}, ["landmarks", "texture"], "texture"),
    ({"landmarks": 0.80, "texture": 0.90}, ["landmarks", "texture", "both", "crop"], None),
])
def test_auto_stops_at_the_first_kind_good_enough(scores, trained, kept, monkeypatch):
    """Faces: landmarks, then texture, each only where the one before falls short; the CNN
    candidates (seconds to minutes of features) only where both do."""
    pytest.importorskip("torch")
    from edge_app.train import pipeline as run
    from edge_app.train.candidate import Candidate, View

    calls = []

    def fake_train_all(job, kinds, auto, have_one=False):
        calls.extend(k.name for k in kinds)
        view = View([], np.zeros(0), np.zeros((0, 2)))
        return {k.name: Candidate(plan=InputPlan(k.name, "face"), model=None, arch="", weights="",
                                  input_size=(1, 1),
                                  metrics={"accuracy": scores.get(k.name, 0.5), "n": 100},
                                  history=[], best_epoch=0, train_count=0, val=view,
                                  found_rate=1.0, timings={})
                for k in kinds}

    monkeypatch.setattr(run, "_train_all", fake_train_all)
    task = load_task("emotions")
    job = type("Job", (), {"task": task, "plan": InputPlan("landmarks", "face"),
                           "cfg": type("Cfg", (), {"input": "auto"})(), "data": "d"})()
    found = run._train_auto(job, auto_candidates(True, "fast", False, "face"))
    assert calls == trained and list(found) == trained
    if kept:
        assert found[kept].plan.reason == run.ENOUGH_REASON.format(kept)
