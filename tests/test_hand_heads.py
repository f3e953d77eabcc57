"""Declared hand heads (train.hand_heads): the finger counter reads each finger's own
measures, treats the four fingers alike and scores counts; the thumb model reads the thumb's
direction only; bundles name theirs, and older bundles load as the MLP they were."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_app.subject.base import Subject  # noqa: E402
from edge_app.subject.landmarks import (  # noqa: E402
    FINGERS,
    HAND_DERIVED,
    SCHEMA_POINTS,
    hand_measures,
    join_features,
    landmark_features,
    measure_columns,
    split_features,
    thumb_direction,
    upright_columns,
    upright_points,
)
from edge_app.tasks.spec import load_task, parse_task  # noqa: E402
from edge_app.train.hand_models import FingerCountModel, ThumbDirectionModel, head_by_arch, head_for  # noqa: E402
from tests.test_landmarks import _sim_subject  # noqa: E402


def _features(label: str, seed: int = 5) -> np.ndarray:
    x = landmark_features(_sim_subject("fingers", seed=seed, label=label)[1])
    assert x is not None
    return x[0]


def test_measure_columns_are_where_hand_measures_puts_them():
    x = _features("3")
    local, turn = split_features(x[None], "hand")
    measures = hand_measures(local, upright_points(local, turn))[0]
    start = 4 * SCHEMA_POINTS["hand"] + 2
    assert np.allclose(x[start:], measures, atol=1e-5) and len(measures) == HAND_DERIVED
    assert np.allclose(x[measure_columns("reach")], measures[15:20], atol=1e-5)
    assert np.allclose(x[measure_columns("thumb_dir")], measures[28:30], atol=1e-5)
    with pytest.raises(KeyError):
        measure_columns("wrist")
    # the blocks the heads read, rebuilt from the points themselves
    pts = local[0]
    palm = pts[[0, 5, 9, 13, 17]].mean(axis=0)
    assert np.allclose(x[measure_columns("palm")], np.linalg.norm(pts[[4, 8, 12, 16, 20]] - palm, axis=1),
                       atol=1e-5)
    seg = np.diff(pts[list(FINGERS[1])], axis=0)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    assert np.allclose(x[measure_columns("bends")[3:6]], (seg[:-1] * seg[1:]).sum(1), atol=1e-5), "index bends"
    assert np.allclose(x[upright_columns(4)], upright_points(local, turn)[0, 4], atol=1e-5)


def test_each_finger_is_read_from_its_own_columns():
    torch.manual_seed(0)
    model = FingerCountModel([1, 2, 3, 4, 5]).eval()
    x = _features("5")[None]
    local, turn = split_features(x, "hand")
    with torch.no_grad():
        base = model.raised(torch.from_numpy(x))[0]
        for k, tip in enumerate((4, 8, 12, 16, 20)):   # fold one finger's tip onto its base
            moved = local.copy()
            moved[0, tip] = moved[0, FINGERS[k][1]]
            changed = (model.raised(torch.from_numpy(join_features(moved, turn, "hand")))[0] - base).abs() > 1e-6
            assert changed.tolist() == [i == k for i in range(5)], f"finger {k} moved"


def test_which_fingers_are_raised_does_not_matter():
    torch.manual_seed(0)
    model = FingerCountModel(list(range(6))).eval()
    x = torch.from_numpy(np.stack([_features(str(n)) for n in range(1, 6)]))
    swapped = x.clone()
    index, ring = model.finger_columns[0], model.finger_columns[2]
    swapped[:, index], swapped[:, ring] = x[:, ring], x[:, index]
    with torch.no_grad():
        out, out_swapped = model(x), model(swapped)
    assert torch.allclose(out, out_swapped, atol=1e-6), "index and ring share one model"
    assert torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-4), "a distribution over 0-5"


def test_scores_are_the_count_of_raised_fingers():
    model = FingerCountModel([1, 3, 5]).eval()
    with torch.no_grad():   # every finger certainly raised, then certainly not (but the thumb)
        for net, bias in ((model.finger, 20.0), (model.thumb, 20.0)):
            net[-1].weight.zero_()
            net[-1].bias.fill_(bias)
        x = torch.from_numpy(_features("5")[None])
        assert model(x).argmax(1).item() == 2, "five raised: class '5'"
        model.finger[-1].bias.fill_(-20.0)
        assert model(x).argmax(1).item() == 0, "the thumb alone: class '1'"


def test_the_spec_declares_the_head():
    fingers, thumbs = load_task("fingers"), load_task("thumbs")
    assert head_for(fingers, "hand").arch == "finger_count"
    assert head_for(thumbs, "hand").arch == "thumb_direction"
    assert head_for(load_task("emotions"), "face_mesh") is None
    assert head_for(fingers, "face") is None and head_by_arch("landmark_mlp") is None
    with_zero = parse_task({"name": "f", "kind": "classification", "classes": ["0", "2", "5"],
                            "subject": "hand", "count": "fingers"})
    assert head_for(with_zero, "hand").build(with_zero).counts.tolist() == [0, 2, 5]


def test_the_thumb_model_reads_the_thumb_only():
    torch.manual_seed(0)
    task = parse_task({"name": "t", "kind": "classification", "classes": ["down", "up"],
                       "subject": "hand", "thumb": {"down": "down", "up": "up"}})
    model = head_for(task, "hand").build(task).eval()
    assert isinstance(model, ThumbDirectionModel)
    rows = []
    for label in ("thumbs_up", "thumbs_down"):
        for seed in range(3):
            x = landmark_features(_sim_subject("thumbs", seed=seed, label=label)[1])[0]
            rows.append((x, label))
    x = torch.from_numpy(np.stack([r[0] for r in rows]))
    with torch.no_grad():
        pred = model(x).argmax(1).tolist()
    assert pred == [1 if label == "thumbs_up" else 0 for _, label in rows], "classes in the spec's order"
    other = x.clone()
    keep = torch.tensor(sorted(set(model.tip_columns.tolist()) | set(model.base_columns.tolist())))
    other[:, [c for c in range(x.shape[1]) if c not in keep.tolist()]] = 0.5
    with torch.no_grad():
        assert torch.allclose(model(x), model(other)), "nothing but the thumb's base and tip is read"


def test_an_older_fingers_bundle_loads_as_the_mlp_it_was():
    from edge_app.model.bundle import Bundle
    from edge_app.model.inputs import InputPlan
    from edge_app.train.inputs.landmarks import LandmarksTraining
    from edge_app.train.landmark_mlp import LandmarkModel

    plan = InputPlan("landmarks", "hand", provider="mediapipe", features=122, layout=2, schema="hand")
    old = Bundle(path=None, task=load_task("fingers"), arch="landmark_mlp", input_size=(1, 122),  # type: ignore[arg-type]
                 plan=plan)
    assert isinstance(LandmarksTraining().build(old), LandmarkModel)
    new = Bundle(path=None, task=load_task("fingers"), arch="finger_count", input_size=(1, 122),  # type: ignore[arg-type]
                 plan=plan)
    assert isinstance(LandmarksTraining().build(new), FingerCountModel)
    thumbs = Bundle(path=None, task=load_task("thumbs"), arch="thumb_direction", input_size=(1, 122),  # type: ignore[arg-type]
                    plan=plan)
    assert isinstance(LandmarksTraining().build(thumbs), ThumbDirectionModel)


def test_a_subject_without_a_hand_is_not_counted():
    face = Subject("face", (0, 0, 10, 10), np.zeros((5, 2)))
    assert landmark_features(face, "hand") is None


def test_an_arch_of_a_later_release_is_one_line():
    from edge_app.errors import UserError
    from edge_app.train.landmark_mlp import make_model

    with pytest.raises(UserError, match="'palm_reader' is from a later edge-app; upgrade"):
        make_model(load_task("fingers"), "hand", 122, "palm_reader")


def test_the_thumb_rule_reads_from_the_thumbs_base():
    pts = np.zeros((21, 2))
    pts[0], pts[9] = (60, 220), (60, 120)                    # wrist, middle base: size 100
    pts[1], pts[2], pts[3], pts[4] = (100, 200), (100, 160), (120, 150), (140, 140)
    hand = Subject("hand", (0, 0, 200, 240), pts)
    assert thumb_direction(hand) == "up", "bent at its base, the thumb still points up"
    pts[[3, 4]] = (100, 230), (100, 260)
    assert thumb_direction(Subject("hand", (0, 0, 200, 270), pts)) == "down"


def test_suggestions_follow_the_declared_directions():
    from edge_app.subject.suggest import _thumb_rule

    task = parse_task({"name": "t", "kind": "classification", "classes": ["yes", "no"],
                       "subject": "hand", "thumb": {"yes": "up", "no": "down"}})
    rule = _thumb_rule(task)
    assert rule is not None, "the spec says which class is up, whatever its name"
    assert rule(_sim_subject("thumbs", seed=1, label="thumbs_up")[1]) == "yes"
    assert rule(_sim_subject("thumbs", seed=1, label="thumbs_down")[1]) == "no"


@pytest.mark.slow
def test_texture_on_a_counting_task_keeps_the_mlp(tmp_path):
    """A hand head reads landmark measures only: --input texture trains the MLP, which reads
    the texture block it pays for."""
    import json

    from helpers import FAST_TRAIN, capture_sim, train_bundle

    data = capture_sim("fingers", tmp_path / "d", 40, 2)
    bundle = train_bundle("fingers", data, tmp_path / "b", *FAST_TRAIN, "--input", "texture")
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["input_plan"]["input"] == "texture" and meta["arch"] == "landmark_mlp"
