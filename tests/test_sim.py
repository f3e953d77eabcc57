"""The simulated camera's ground truth is what it draws."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edge_app.sim import face, hand
from edge_app.sim.scenes import SCENES, render
from edge_app.sources import open_source

SIZE = (320, 240)


def _render(scene, pose, seed, hide=()):
    return render(SCENES[scene], pose, np.random.default_rng(seed), SIZE, clean=True, hide=hide)


def _mask(img):
    return img.max(axis=2) > 0


def _diff(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 8


def _near(mask, x, y, r=2):
    x, y = int(round(x)), int(round(y))
    return bool(mask[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].any())


@pytest.mark.parametrize("scene,pose", [("hand", p) for p in hand.POSES] + [("face", p) for p in face.POSES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_bounds_the_drawn_subject(scene, pose, seed):
    img, truth = _render(scene, pose, seed)
    ys, xs = np.nonzero(_mask(img))
    x0, y0, x1, y1 = truth["box"]
    assert xs.min() >= x0 - 1.5 and xs.max() <= x1 + 1.5 and ys.min() >= y0 - 1.5 and ys.max() <= y1 + 1.5
    assert xs.min() <= x0 + 4 and xs.max() >= x1 - 4 and ys.min() <= y0 + 4 and ys.max() >= y1 - 4
    assert 0 <= x0 and x1 <= SIZE[0] and 0 <= y0 and y1 <= SIZE[1], "the subject stays in frame"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("part,index", [("nose", 2), ("left_eye", 0), ("right_eye", 1)])
def test_face_points_are_where_the_parts_are_drawn(seed, part, index):
    full, truth = _render("face", "neutral", seed)
    without, _ = _render("face", "neutral", seed, hide=(part,))
    x, y = truth["landmarks"][index]
    assert _near(_diff(full, without), x, y), f"{part} label is not on the drawn {part}"


@pytest.mark.parametrize("seed", range(5))
def test_left_eye_is_the_subjects_left(seed):
    _, truth = _render("face", "happy", seed)
    left, right, nose = truth["landmarks"][:3]
    assert left[0] > nose[0] > right[0], "subject's left eye must be on the image's right"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("finger,tip", [("index", 8), ("middle", 12), ("pinky", 20), ("thumb", 4)])
def test_hand_fingertips_are_where_fingers_are_drawn(seed, finger, tip):
    full, truth = _render("hand", "fingers_5", seed)
    without, _ = _render("hand", "fingers_5", seed, hide=(finger,))
    assert _near(_diff(full, without), *truth["landmarks"][tip])


@pytest.mark.parametrize("pose,up", [("thumb_up", True), ("thumb_down", False)])
@pytest.mark.parametrize("seed", range(6))
def test_thumb_direction_is_drawn(pose, up, seed):
    full, truth = _render("hand", pose, seed)
    without, _ = _render("hand", pose, seed, hide=("thumb",))
    thumb_y = np.nonzero(_diff(full, without))[0].mean()
    hand_y = np.nonzero(_mask(without))[0].mean()
    assert (thumb_y < hand_y) == up
    assert (truth["landmarks"][4][1] < truth["landmarks"][0][1]) == up


@pytest.mark.parametrize("n", range(6))
def test_finger_count_matches_landmarks(n):
    lm = hand.landmarks(hand.POSES[f"fingers_{n}"])
    wrist = lm[0]
    extended = sum(np.linalg.norm(lm[t] - wrist) > np.linalg.norm(lm[m] - wrist) + 0.3
                   for m, t in ((2, 4), (5, 8), (9, 12), (13, 16), (17, 20)))
    assert extended == n
    assert lm.shape == (21, 2) and len(hand.LANDMARK_NAMES) == 21


def test_sim_source_truth_is_normalised_and_balanced():
    src = open_source("sim://fingers?seed=3&width=160&height=120")
    src.open()
    frames = [src.read() for _ in range(50)]
    labels = Counter(f.truth["label"] for f in frames)
    assert labels == Counter({c: 10 for c in "12345"})
    for f in frames:
        assert f.image.shape == (120, 160, 3)
        box = f.truth["subject"]["box"]
        assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
        assert len(f.truth["subject"]["landmarks"]) == 21
        assert f.truth["pose"] == "fingers_" + f.truth["label"]
    assert [f.id for f in frames] == list(range(50))


def test_sim_source_is_deterministic_and_poseable():
    a, b = open_source("sim://face?seed=7"), open_source("sim://face?seed=7")
    a.open(), b.open()
    fa, fb = a.read(), b.read()
    assert np.array_equal(fa.image, fb.image) and fa.truth == fb.truth
    assert set(fa.truth["points"]) == {"nose", "left_eye", "right_eye"}
    thumbs = open_source("sim://thumbs?seed=1")
    thumbs.open()
    assert thumbs.request_label("thumbs_down")
    assert {thumbs.read().truth["label"] for _ in range(10)} == {"thumbs_down"}
