"""Texture features (edge_app.subject.texture): HOG as the reference defines it, taken from the
subject's own upright frame, the same in training and in the live loop."""
from __future__ import annotations

import numpy as np
import pytest

from edge_app.model.inputs import INPUT_KINDS
from edge_app.opencv import cv2
from edge_app.sources import open_source
from edge_app.subject.base import Subject
from edge_app.subject.landmarks import feature_size, landmark_features
from edge_app.subject.texture import SIDE, aligned_crop, hog, texture_features, texture_size, with_texture


def _face(seed: int = 4):
    """A simulated face, smoothed: the simulator's skin is per-pixel noise, which no two
    renderings share and which would drown the face's own shapes."""
    src = open_source(f"sim://face?seed={seed}&width=320&height=240")
    src.open()
    frame = src.read()
    src.close()
    image = cv2().GaussianBlur(frame.image, (0, 0), 3)
    return image, Subject.from_dict(frame.truth["subject"], (320, 240))


def _drawn(smile: bool, angle: float = 0.0, scale: float = 1.0):
    """A drawn face (eyes, brows, nose, mouth) turned by ``angle`` degrees and scaled about
    the image centre, with its five points."""
    cv = cv2()
    image = np.full((240, 320, 3), 170, np.uint8)
    cv.ellipse(image, (160, 125), (60, 80), 0, 0, 360, (120, 140, 200), -1)
    for x in (135, 185):
        cv.circle(image, (x, 105), 8, (30, 30, 30), -1)
        cv.line(image, (x - 14, 88), (x + 14, 88 if smile else 94), (40, 40, 40), 4)
    cv.line(image, (160, 110), (160, 140), (60, 60, 90), 3)
    if smile:
        cv.ellipse(image, (160, 158), (26, 14), 0, 0, 180, (20, 20, 80), 4)
    else:
        cv.ellipse(image, (160, 172), (26, 14), 0, 180, 360, (20, 20, 80), 4)
    points = np.array([[185, 105], [135, 105], [160, 140], [184, 160], [136, 160]], np.float64)
    m = cv.getRotationMatrix2D((160, 120), angle, scale)
    image = cv.warpAffine(image, m, (320, 240), borderMode=cv.BORDER_REPLICATE)
    points = np.c_[points, np.ones(len(points))] @ m.T
    return image, Subject("face", (80.0, 40.0, 240.0, 210.0), points)


def test_hog_matches_scikit_image():
    skimage = pytest.importorskip("skimage.feature")
    grey = (np.random.default_rng(0).random((SIDE, SIDE)) * 255).astype(np.uint8)
    want = skimage.hog(grey, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                       block_norm="L2-Hys")
    got = hog(grey)
    assert got.shape == want.shape == (texture_size(),)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_the_crop_follows_the_subject_not_the_image():
    """Turning and scaling the camera moves the face; its aligned crop (and so its texture)
    stays nearly the same, while another expression's differs."""
    def crop(image, subject):
        return aligned_crop(image, landmark_features(subject)[1], "face").astype(np.float64)

    def tex(image, subject):
        return texture_features(image, landmark_features(subject)[1], "face")

    base, turned, frown = crop(*_drawn(True)), crop(*_drawn(True, 25.0, 1.3)), crop(*_drawn(False))
    assert base.shape == (SIDE, SIDE)
    assert np.abs(turned - base).mean() < 0.5 * np.abs(frown - base).mean()
    base, turned, frown = tex(*_drawn(True)), tex(*_drawn(True, 25.0, 1.3)), tex(*_drawn(False))
    assert np.linalg.norm(turned - base) < 0.8 * np.linalg.norm(frown - base)


def test_live_input_is_what_training_sees(tmp_path):
    pytest.importorskip("torch")
    from edge_app.dataset.samples import Dataset, Sample
    from edge_app.dataset.subjects import SubjectScan
    from edge_app.train.landmark_mlp import texture_data

    image, subject = _face()
    kind = INPUT_KINDS["texture"]
    batch, where = kind.live_input(image, subject, (64, 64), 0.25)
    assert batch.shape == (1, kind.feature_width("face")) and where is not None
    x = landmark_features(subject)[0][None]
    path = tmp_path / "f.png"
    cv2().imwrite(str(path), image)   # lossless: the same pixels
    sample = Sample(path=path, label="happy", size=(320, 240))
    ds = Dataset(tmp_path, "folders", "classification", ("happy",), [sample])
    trained, looks = texture_data([sample], x, SubjectScan([subject]), ds, looks=True)
    assert looks is not None and looks.shape == (1, 4, texture_size())
    assert texture_data([sample], x, SubjectScan([subject]), ds)[1] is None
    np.testing.assert_allclose(trained, batch, atol=1e-5)
    assert trained.shape[1] == feature_size("face") + texture_size()


def test_no_landmarks_no_texture():
    image, subject = _face()
    assert with_texture(image, Subject("face", subject.box)) is None
    assert with_texture(image, None) is None


def test_a_candidate_does_not_depend_on_the_ones_before_it(tmp_path):
    """``--input auto`` trains landmarks before texture: the texture model it gets is the one
    ``--input texture`` trains (each candidate starts from the seed), so the benchmark of a
    forced kind tells what auto keeps."""
    torch = pytest.importorskip("torch")
    from edge_app.model.inputs import LANDMARKS, TEXTURE
    from edge_app.tasks.spec import load_task
    from edge_app.tasks.train_config import build_config
    from edge_app.train.candidate import TrainJob
    from edge_app.train.labelled import load_labelled
    from edge_app.train.pipeline import _train_all, resolve_device
    from edge_app.train.subjects import plan_input

    from helpers import capture_sim

    data = capture_sim("emotions", tmp_path / "data", 24, 5)
    task = load_task("emotions")
    cfg = build_config(dict(task.train), {"input": "auto", "mode": "fast", "views": 1, "workers": 0})
    ds = load_labelled(data, task, "auto", "train", False)
    plan, scan = plan_input(ds, task, cfg, False)
    job = TrainJob(ds, scan, plan, task, cfg, resolve_device("cpu"), tmp_path / "out", data,
                   progress=False, quiet=True)
    after = _train_all(job, [LANDMARKS, TEXTURE], True)["texture"].model.state_dict()
    alone = _train_all(job, [TEXTURE], True)["texture"].model.state_dict()
    assert all(torch.equal(after[k], alone[k]) for k in alone)


def test_training_views_see_the_texture_as_worse_cameras_would():
    """The originals keep their texture; in each augmented copy about half the rows carry one
    of the other looks instead (never a texture of another sample)."""
    pytest.importorskip("torch")
    from edge_app.train.landmark_mlp import augment_views

    image, subject = _face()
    x = np.repeat(landmark_features(subject)[0][None], 40, axis=0)
    width = x.shape[1]
    clean = np.zeros((40, 3), np.float32)
    looks = np.stack([np.full((40, 3), k + 1.0, np.float32) for k in range(4)], axis=1)  # (40, 4, 3)
    looks += np.arange(40, dtype=np.float32)[:, None, None] * 10
    out, _ = augment_views(np.concatenate([x, clean], axis=1), np.zeros(40, np.int64), 2, 0, "face", looks)
    tex = out[:, width:].reshape(3, 40, 3)
    assert (tex[0] == 0).all(), "the originals keep their own texture"
    for copy in tex[1:]:
        swapped = (copy != 0).any(axis=1)
        assert 8 <= swapped.sum() <= 32
        row = np.flatnonzero(swapped)
        assert ((copy[row, 0] - np.arange(40)[row] * 10) >= 1).all(), "each row's own looks"
    plain, _ = augment_views(np.concatenate([x, clean], axis=1), np.zeros(40, np.int64), 2, 0, "face")
    assert (plain[:, width:] == 0).all(), "without looks the texture is repeated"
