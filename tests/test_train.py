"""The training stage: weights, modes, splits, bundles, eval, resume and bad input.
Skipped where torch is not installed (a Jetson without the training extras)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from edge_app.cli import main  # noqa: E402
from edge_app.errors import DatasetError, UserError  # noqa: E402
from edge_app.tasks.spec import load_task  # noqa: E402

from helpers import capture_sim, eval_json, fast_train, train_bundle, write_image  # noqa: E402

FAST = fast_train(128)


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    """Training and fresh test captures of each course task from the simulated camera (slow:
    the tests that take it train on it and are marked slow)."""
    root = tmp_path_factory.mktemp("sim")
    return {t: (capture_sim(t, root / t, 160, 1), capture_sim(t, root / (t + "_test"), 100, 99))
            for t in ("thumbs", "emotions", "fingers", "face")}


# Fresh-frame results of fast mode with the default --input auto, 160 captures of 256x192
# (measured: thumbs 0.90 on the hand's crop; emotions 0.89, fingers 1.00 and face NME 0.009
# on landmarks; on whole frames they were 0.83, 0.78, 0.56 and 0.33). These bounds catch a
# pipeline that stops learning, mixes up labels or crops the wrong place, with a margin.
EXPECTED = {"thumbs": ("accuracy", 0.85), "emotions": ("accuracy", 0.78),
            "fingers": ("accuracy", 0.9), "face": ("nme", 0.1)}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_fast_mode_learns_each_course_task(task, sim_data, tmp_path):
    train_dir, test_dir = sim_data[task]
    bundle = train_bundle(task, train_dir, tmp_path / "bundle", *FAST)
    metrics = eval_json(bundle, test_dir, tmp_path / "eval.json")
    key, bound = EXPECTED[task]
    assert metrics["n"] == 100
    if key == "accuracy":
        assert metrics["accuracy"] >= bound
        assert set(metrics["per_class"]) == set(load_task(task).classes)
        assert np.array(metrics["confusion"]).sum() == 100
    else:
        assert metrics["nme"] <= bound and metrics["rmse_px"] > 0
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["mode"] == "fast" and meta["config"]["arch"] == "efficientnet_lite0"
    assert metrics["detection_rate"] == 1.0
    print("{}: {} model, {} {}".format(task, meta["input_plan"]["input"], key, metrics[key]))
    if meta["input_plan"]["input"] in ("landmarks", "texture"):   # auto kept a landmark model
        declared = {"fingers": "finger_count", "thumbs": "thumb_direction"}   # the specs' heads
        assert meta["arch"] == declared.get(task, "landmark_mlp")
        assert meta["input_plan"]["input"] == "landmarks" or meta["input_plan"]["subject"] == "face", \
            "auto tries texture on faces only"
        return
    if meta["input_plan"]["input"] == "both":        # auto kept the fused model
        assert meta["input_plan"]["embed"] > 0 and meta["input_plan"]["features"] > 0
        assert (bundle / "val_sample" / "landmarks.npz").is_file()
        return
    assert meta["input_plan"]["input"] == "crop"
    views = meta["train_count"] * 2   # one clean and one augmented view per image
    rate = meta["timings"]["images_per_second"]
    assert abs(rate - views / meta["timings"]["feature_seconds"]) < 0.2, "backbone views per second"
    assert 0 < meta["val_sample"] <= 64 and (bundle / "val_sample" / "labels.json").is_file()
    assert (bundle / "plots" / "curves.png").is_file() and (bundle / "plots" / "val_grid.png").is_file()
    state = torch.load(str(bundle / "model.pt"), weights_only=True)
    assert any(k.startswith("head.") for k in state)


def test_pretrained_lite0_knows_a_cat():
    data = pytest.importorskip("skimage.data")
    from edge_app.model.preprocess import to_model_input
    from edge_app.train.backbones import IMAGENET_MEAN, IMAGENET_STD, get_backbone

    net = get_backbone("efficientnet_lite0").classifier("imagenet").eval()
    results = {}
    for name, want in (("chelsea", 285), ("coffee", 967)):
        rgb = getattr(data, name)()
        x = torch.from_numpy(to_model_input(rgb[:, :, ::-1].copy(), (224, 224))).permute(2, 0, 1)
        x = (x.float() / 255 - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        with torch.no_grad():
            probs = net(x[None]).softmax(1)[0]
        results[name] = (int(probs.argmax()), float(probs.max()))
        assert results[name][0] == want, results


def test_offline_resnet_weights_say_what_to_do(tmp_path, monkeypatch):
    import torchvision.models as tm

    from edge_app.train.backbones import get_backbone

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(self, *a, **k):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(tm.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(UserError) as err:
        get_backbone("resnet18").build("imagenet")
    text = str(err.value)
    assert "--weights none" in text and "efficientnet_lite0" in text and str(tmp_path) in text


def test_local_weights_file(tmp_path):
    import torchvision.models as tm

    from edge_app.train.backbones import get_backbone

    good = tmp_path / "r18.pth"
    torch.save(tm.resnet18().state_dict(), str(good))
    assert get_backbone("resnet18").build(str(good)) is not None
    wrong = tmp_path / "other.pth"
    torch.save({"foo": torch.zeros(1)}, str(wrong))
    with pytest.raises(UserError, match="not resnet18 weights"):
        get_backbone("resnet18").build(str(wrong))
    with pytest.raises(UserError, match="file not found"):
        get_backbone("resnet18").build(str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="did you mean 'resnet18'"):
        get_backbone("resnet81")


@pytest.mark.slow
def test_full_mode_interrupt_and_resume(sim_data, tmp_path, monkeypatch):
    from edge_app.train import fitting as engine

    train_dir = sim_data["thumbs"][0]
    bundle = tmp_path / "full"
    args = ["train", "--task", "thumbs", "--data", str(train_dir), "--out", str(bundle),
            "--arch", "resnet18", "--weights", "none", "--mode", "full", "--input-size", "64",
            "--epochs", "3", "--patience", "10", "--no-progress", "--workers", "0", "--input", "crop"]
    calls = {"n": 0}
    real = engine.predict

    def interrupt_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:   # head warm start (train, val features), epoch 1, then epoch 2
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(engine, "predict", interrupt_in_epoch_two)
    assert main(args) == 2, "Ctrl-C is a clean stop with a message, not a traceback"
    assert (bundle / "last.pt").is_file() and not (bundle / "model.pt").exists()
    monkeypatch.setattr(engine, "predict", real)
    assert main(args + ["--resume"]) == 0
    history = json.loads((bundle / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3], "resumed after epoch 1"


def test_group_split_keeps_subjects_together(tmp_path):
    from edge_app.dataset.samples import Sample
    from edge_app.train.split import split_indices

    samples = [Sample(tmp_path / f"S{s:03d}_001_{f:08d}.png", label=str(s % 2))
               for s in range(20) for f in range(3)]
    strata = [s % 2 for s in range(20) for _ in range(3)]
    train_idx, val_idx = split_indices(samples, strata, 0.25, seed=1, group=r"^(S\d+)_")
    subject = lambda i: samples[i].path.name[:4]  # noqa: E731
    assert not {subject(i) for i in train_idx} & {subject(i) for i in val_idx}
    assert 9 <= len(val_idx) <= 18
    with pytest.raises(UserError, match="matches no file name"):
        split_indices(samples, strata, 0.25, 0, group=r"^nothing")


@pytest.mark.parametrize("use_v2", [True, False])
def test_keypoint_augment_moves_points_with_the_image(use_v2, monkeypatch):
    from edge_app.train.augment import KeypointTrain, has_keypoints

    if use_v2 and not has_keypoints():
        pytest.skip("this torchvision has no tv_tensors.KeyPoints")
    task = load_task("face")
    image = np.zeros((120, 160, 3), np.uint8)
    pts = np.array([[0.5, 0.6], [0.65, 0.4], [0.3, 0.45]])    # nose, left_eye, right_eye
    colors = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    import cv2

    for (x, y), c in zip(pts, colors):
        cv2.circle(image, (int(x * 160), int(y * 120)), 4, c, -1)
    aug = KeypointTrain(task, (96, 96), use_v2=use_v2)
    torch.manual_seed(3)
    flipped = False
    for _ in range(12):
        out, moved = aug(image, pts)
        rgb = out.permute(1, 2, 0).numpy()
        dots = []
        for channel in (0, 1, 2):   # nose red, left eye green, right eye blue (RGB)
            plane = rgb[:, :, channel] - rgb.sum(axis=2) / 3   # this dot's colour stands out
            ys, xs = np.nonzero(plane > 0.5 * plane.max())
            dots.append(((xs.mean() + 0.5) / 96, (ys.mean() + 0.5) / 96))
        dots = np.array(dots)
        assert np.abs(moved[0] - dots[0]).max() * 96 < 2.5, "nose is not on its dot"
        # A flip swaps the names, so each eye name lands on one of the two eye dots.
        for eye in moved[1:]:
            assert np.abs(dots[1:] - eye).max(axis=1).min() * 96 < 2.5, "eye is not on a dot"
        flipped |= np.abs(moved[1] - dots[2]).max() * 96 < 2.5   # left_eye on the blue dot
        assert moved[1, 0] > moved[2, 0], "the subject's left eye stays on the image's right"
    assert flipped, "flips happen, and then the names are swapped"


@pytest.mark.slow
def test_training_works_without_keypoints_support(sim_data, tmp_path, monkeypatch):
    from torchvision import tv_tensors

    monkeypatch.delattr(tv_tensors, "KeyPoints", raising=False)
    from edge_app.train.augment import has_keypoints

    assert not has_keypoints()
    train_bundle("face", sim_data["face"][0], tmp_path / "b", "--views", "1", *FAST)


def test_bad_training_input_is_one_line(tmp_path, capsys):
    for i in range(3):
        write_image(tmp_path / "one" / "thumbs_up" / f"{i}.jpg")
    assert main(["train", "--task", "thumbs", "--data", str(tmp_path / "one"), "--out",
                 str(tmp_path / "b")] + FAST) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'thumbs_down'" in err and "no images" in err
    assert main(["train", "--task", "thumbs", "--data", str(tmp_path / "one"), "--out",
                 str(tmp_path / "b"), "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_points_outside_the_image_are_ignored_with_a_warning(tmp_path, capsys):
    root = tmp_path / "kp"
    rows = ["image,nose_x,nose_y,left_eye_x,left_eye_y,right_eye_x,right_eye_y"]
    for i in range(12):
        write_image(root / f"{i}.jpg", 64, 64, value=20 * i)
        rows.append(f"{i}.jpg,{200 if i == 0 else 32},30,40,20,20,20")
    (root / "k.csv").write_text("\n".join(rows) + "\n")
    train_bundle("face", root, tmp_path / "b", *FAST)
    assert "1 image(s) have a point outside the image" in capsys.readouterr().out


def test_task_yaml_train_section_and_cli_override(tmp_path):
    from edge_app.tasks.train_config import build_config

    path = tmp_path / "t.yaml"
    path.write_text("name: t\nkind: classification\nclasses: [a, b]\ntrain: {epochs: 7, arch: resnet34}\n")
    task = load_task(str(path))
    cfg = build_config(dict(task.train), {"arch": "resnet50", "epochs": None})
    assert cfg.epochs == 7 and cfg.arch == "resnet50"
    path.write_text("name: t\nkind: classification\nclasses: [a, b]\ntrain: {epoch: 7}\n")
    with pytest.raises(UserError, match="train.epoch.*did you mean 'epochs'"):
        load_task(str(path))


@pytest.mark.slow
def test_eval_takes_a_subset_and_names_skipped(sim_data, tmp_path, capsys):
    bundle = train_bundle("fingers", sim_data["fingers"][0], tmp_path / "b", *FAST)
    subset = tmp_path / "subset"
    for name in ("1", "2", "0"):
        for i in range(2):
            write_image(subset / name / f"{i}.jpg", 96, 96)
    capsys.readouterr()
    assert main(["eval", "--model", str(bundle), "--data", str(subset), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on 4 image(s)" in out and "skipped class folder(s) not in task 'fingers': 0" in out
    only_zero = tmp_path / "zero"
    write_image(only_zero / "0" / "a.jpg", 96, 96)
    from edge_app.train.pipeline import evaluate

    with pytest.raises(DatasetError, match="no images of task 'fingers'"):
        evaluate(bundle, only_zero, progress=False)


def test_crop_jitter_grows_and_moves_the_crop_within_bounds():
    import torch

    from edge_app.train.torch_data import jitter_crop

    torch.manual_seed(0)
    boxes = np.array([jitter_crop((100.0, 50.0, 60.0), 0.3) for _ in range(300)])
    sides = boxes[:, 2]
    centres = boxes[:, :2] + sides[:, None] / 2
    assert sides.min() >= 60.0 and sides.max() <= 60.0 * 1.3 and sides.max() > 60.0 * 1.25
    assert np.abs(centres - (130.0, 80.0)).max() <= 0.1 * 60.0 + 1e-9, "moved by up to 10% of the side"
    assert np.abs(centres - (130.0, 80.0)).max() > 0.08 * 60.0


def test_classification_crops_are_also_seen_at_lower_resolution(tmp_path):
    import cv2

    from edge_app.dataset.samples import Sample
    from edge_app.train.torch_data import CropAugment, ImageDataset

    board = (np.indices((200, 200)).sum(axis=0) % 2 * 255).astype(np.uint8)   # 1-pixel checks
    path = tmp_path / "board.png"
    cv2.imwrite(str(path), cv2.merge([board] * 3))
    crop = Sample(path, label="a", crop=(20.0, 20.0, 160.0))
    frame = Sample(path, label="a")
    keep = lambda image, target: (image, target)  # noqa: E731
    torch.manual_seed(0)
    low = ImageDataset([crop] * 40, [0] * 40, keep, CropAugment(low_res=1.0, min_side=40))
    sides = [low[i][0].shape[0] for i in range(40)]
    assert min(sides) >= 40 and max(sides) <= 160 and max(sides) - min(sides) > 60
    assert low[0][0].std() < 100, "area averaging blurs the checks (a sharp copy has std 127)"
    sharp = ImageDataset([crop, frame], [0, 0], keep, CropAugment(low_res=0.0))
    assert sharp[0][0].shape[:2] == (160, 160) and sharp[0][0].std() > 120
    whole = ImageDataset([frame] * 10, [0] * 10, keep, CropAugment(low_res=1.0))
    assert all(whole[i][0].shape[:2] == (200, 200) for i in range(10)), "whole frames are left as they are"
    kinds = {k: load_task(k).task_kind.training().crop_augment for k in ("fingers", "face")}
    assert kinds["fingers"].low_res > 0 and kinds["face"] == CropAugment(), \
        "keypoint crops are not varied (their points live in crop coordinates)"


def test_classification_score_breaks_ties_by_validation_loss():
    from edge_app.tasks.spec import load_task

    task = load_task("thumbs")
    kind = task.task_kind.training()
    targets = np.array([0, 1, 0, 1])
    unsure = kind.metrics(np.array([[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]), targets, task)
    sure = kind.metrics(np.array([[4.0, -4.0], [-4.0, 4.0], [4.0, -4.0], [-4.0, 4.0]]), targets, task)
    wrong = kind.metrics(np.array([[4.0, -4.0], [4.0, -4.0], [4.0, -4.0], [-4.0, 4.0]]), targets, task)
    assert unsure["accuracy"] == sure["accuracy"] == 1.0 and sure["nll"] < unsure["nll"]
    assert kind.score(sure) > kind.score(unsure) > kind.score(wrong), \
        "at equal accuracy the more confident model; accuracy still decides first"


def _pick(kind, metrics_per_epoch):
    """The epoch fit_full keeps: 0 is the warm start, then each fine-tuning epoch."""
    from edge_app.train.fitting import choose

    best_score, stale, kept = -float("inf"), 0, None
    for epoch, metrics in enumerate(metrics_per_epoch):
        keep, best_score, stale = choose(kind.score(metrics), kind.tolerance(metrics), best_score, stale)
        kept = epoch if keep else kept
    return kept, stale


def test_full_mode_keeps_the_fine_tuned_model_within_validation_noise():
    kind = load_task("fingers").task_kind.training()

    def acc(a, nll=0.2, n=120):
        return {"accuracy": a, "nll": nll, "n": n}

    # measured (fingers set1, seed 1): the warm start scored one image more than epoch 4 and
    # was kept; on other people it scored 40% where the fine-tuned epochs score 70-80%
    seed1 = [acc(118 / 120, 0.09), acc(112 / 120, 0.34), acc(116 / 120, 0.19), acc(112 / 120, 0.22),
             acc(117 / 120, 0.14)]
    assert _pick(kind, seed1) == (4, 4)
    assert _pick(kind, [acc(1.0), acc(0.80), acc(0.85)])[0] == 0, "clearly worse fine-tuning loses"
    assert _pick(kind, [acc(0.9), acc(1.0), acc(0.95), acc(0.97)]) == (1, 2), \
        "5 points below the best is beyond two images of 120: the best epoch stays"
    assert _pick(kind, [acc(0.9, n=20), acc(1.0, n=20), acc(0.92, n=20)])[0] == 2, \
        "a 20-image validation set cannot tell 92% from 100%"
    face = load_task("face").task_kind.training()
    assert _pick(face, [{"rmse": 3.0}, {"rmse": 2.9}, {"rmse": 2.95}])[0] == 1, "point errors: the lower"
