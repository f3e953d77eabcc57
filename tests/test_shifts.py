"""The camera-shift suite (train/shifts.py): the fixed parameters of each shift, determinism,
points that move with the picture, declared rotations, and rendering a dataset copy."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.errors import UserError
from edge_app.train import shifts
from edge_app.train.shifts import SHIFTS, apply_shift, render_dataset, shift_names, turned, upright

from helpers import write_class_tree


def _photo(w=120, h=90, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, (h, w, 3), dtype=np.uint8)


def test_every_shift_is_deterministic_and_keeps_the_picture_size():
    image = _photo()
    for name, shift in SHIFTS.items():
        a, b = apply_shift(image, name), apply_shift(image.copy(), name)
        assert a.dtype == np.uint8 and np.array_equal(a, b), name
        expected = image.shape[:2] if shift.rotate % 180 == 0 else image.shape[1::-1]
        assert a.shape[:2] == tuple(expected), name
        assert shift.description


@pytest.mark.parametrize("name,bgr", [("purple", (125, 70, 125)), ("green", (80, 120, 80)),
                                      ("dark", (35, 35, 35)), ("bright", (200, 200, 200))])
def test_tints_and_exposure_are_the_fixed_gains(name, bgr):
    image = np.full((10, 10, 3), 100, np.uint8)
    assert tuple(apply_shift(image, name)[5, 5]) == bgr


def test_sensor_noise_is_sigma_14_and_fixed_by_the_picture():
    flat = np.full((100, 100, 3), 128, np.uint8)
    diff = apply_shift(flat, "noise").astype(float) - 128
    assert abs(diff.mean()) < 0.5 and abs(diff.std() - 14.0) < 0.5
    other = flat.copy()
    other[0, 0] = 129
    assert not np.array_equal(apply_shift(other, "noise")[1:], apply_shift(flat, "noise")[1:]), \
        "another picture draws other noise"
    # the draw is from raw PCG64 bits: a numpy release cannot change it
    assert apply_shift(flat, "noise")[0, 0].tolist() == FIRST_NOISY_PIXEL


FIRST_NOISY_PIXEL = [112, 153, 119]   # BGR of pixel (0, 0), recorded when the shift was added


def test_a_composite_is_its_parts_in_turn_with_points_and_turns_carried():
    image = _photo()
    both = shifts.get_shift("dark+noise")
    assert np.array_equal(both.apply(image, None), apply_shift(apply_shift(image, "dark"), "noise"))
    assert both.rotate == 0 and both.points is None and "then" in both.description
    moved = shifts.get_shift("far+rot90")
    out = moved.apply(image, None)
    assert moved.rotate == 90 and out.shape[:2] == image.shape[1::-1]
    assert np.array_equal(out, apply_shift(apply_shift(image, "far"), "rot90"))
    pts = np.array([[0.1, 0.2], [0.9, 0.6]])
    one_by_one = SHIFTS["rot90"].map_points(SHIFTS["far"].map_points(pts, (120, 90)), (90, 120))
    assert np.allclose(moved.map_points(pts, (out.shape[1], out.shape[0])), one_by_one)
    assert shifts.get_shift("rot90+rot180").rotate == 270
    assert shift_names("dark+noise,purple,noise") == ["purple", "noise", "dark+noise"]
    with pytest.raises(UserError, match="'nosie' is not one of"):
        shift_names("dark+nosie")


def test_over_exposure_clips():
    assert apply_shift(np.full((4, 4, 3), 200, np.uint8), "bright").max() == 255


def test_backlight_whitens_the_outside_and_leaves_the_subject_as_it_is():
    image = np.full((100, 200, 3), 50, np.uint8)
    box = (80.0, 30.0, 120.0, 70.0)
    out = apply_shift(image, "backlight", box)
    # the box grown by 10% of its side per edge is untouched
    assert np.array_equal(out[26:74, 76:124], image[26:74, 76:124])
    assert out[0, 0].min() >= 50 + 0.85 * 205 - 1, "corners near white"
    # without a box: the centred 40% of the area is kept, the outer 60% brightened
    out = apply_shift(image, "backlight")
    changed = (out != image).any(axis=2).mean()
    assert 0.55 <= changed <= 0.62
    assert np.array_equal(out[50, 100], image[50, 100])


def test_low_resolution_loses_detail_at_the_same_size():
    image = np.zeros((128, 256, 3), np.uint8)
    image[:, ::2] = 255   # one-pixel stripes cannot survive 64 px
    out = apply_shift(image, "lowres")
    assert out.shape == image.shape and out.std() < 0.2 * image.std()


def test_motion_blur_is_a_horizontal_nine_pixel_line():
    image = np.zeros((21, 41, 3), np.uint8)
    image[10, 20] = 255
    out = apply_shift(image, "blur")
    assert list(np.nonzero(out[10, :, 0])[0]) == list(range(16, 25))
    assert not out[9].any() and not out[11].any()


def test_far_shrinks_the_photo_into_its_edge_colour_and_moves_points_with_it():
    image = np.full((90, 120, 3), 30, np.uint8)
    image[30:60, 40:80] = 220
    out = apply_shift(image, "far")
    assert tuple(out[0, 0]) == (30, 30, 30) and tuple(out[-1, -1]) == (30, 30, 30)
    corners = SHIFTS["far"].map_points(np.array([[0.0, 0.0], [1.0, 1.0]]), (120, 90))
    assert np.allclose(corners, [[40 / 120, 30 / 90], [80 / 120, 60 / 90]])
    bright = np.argwhere(out[:, :, 0] > 200)
    centre = SHIFTS["far"].map_points(np.array([[0.5, 0.5]]), (120, 90))[0] * [120, 90]
    assert np.allclose(bright.mean(axis=0)[::-1], centre, atol=1.0)


@pytest.mark.parametrize("name,deg", [("rot90", 90), ("rot180", 180)])
def test_rotations_are_declared_exact_and_move_points_with_the_pixels(name, deg):
    image = _photo(7, 5)
    out = apply_shift(image, name)
    assert SHIFTS[name].rotate == deg
    assert np.array_equal(upright(out, deg), image), "turning clockwise by rotate undoes it"
    h, w = image.shape[:2]
    x, y = 6, 1   # a pixel near the top-right corner
    mark = np.zeros_like(image)
    mark[y, x] = 255
    moved = np.argwhere(apply_shift(mark, name)[:, :, 0])[0]
    oh, ow = out.shape[:2]
    p = SHIFTS[name].map_points(np.array([[(x + 0.5) / w, (y + 0.5) / h]]), (ow, oh))[0]
    assert np.allclose(p * [ow, oh] - 0.5, moved[::-1])


def test_turned_turns_counter_clockwise():
    image = np.zeros((2, 3), np.uint8)
    image[0, 2] = 1   # top-right
    assert turned(image, 90)[0, 0] == 1, "top-right goes to top-left"


def test_shift_names_and_one_line_for_a_typo():
    assert shift_names("all") == list(SHIFTS) and shift_names("none") == []
    assert shift_names("far,purple") == ["purple", "far"], "suite order"
    with pytest.raises(UserError, match="did you mean 'purple'"):
        shift_names("purpel")


def test_render_dataset_copies_the_layout_and_declares_rotations(tmp_path):
    src = write_class_tree(tmp_path / "src", {"a": 2, "b": 3}, w=40, h=30)
    (src / "dataset.yaml").write_text("kind: classification\ncrops: true\nrotate: 180\n")
    out = render_dataset(src, tmp_path / "rot", "rot90")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(files) == 5 and all(f.split("/")[0] in ("a", "b") for f in files)
    import cv2

    assert cv2.imread(str(out / files[0])).shape[:2] == (40, 30), "turned"
    from edge_app.tasks.safe_yaml import load_yaml

    # the source's own turn is applied on reading; the copy declares only the shift's
    assert load_yaml(out / "dataset.yaml", UserError) == {"kind": "classification", "crops": True,
                                                         "rotate": 90}
    # a reader without rotate: support gets the pictures upright and no declaration
    flat = render_dataset(src, tmp_path / "flat", "rot90", honour_rotate=False)
    assert cv2.imread(str(next(flat.rglob("*.png")))).shape[:2] == (30, 40)
    assert load_yaml(flat / "dataset.yaml", UserError) == {"kind": "classification", "crops": True}


def test_a_rendered_rotation_reads_back_upright(tmp_path):
    from edge_app.dataset.formats import read_dataset
    from edge_app.dataset.verify import read_image

    if not shifts.rotation_honoured():
        pytest.skip("this reader does not honour rotate: yet")
    src = write_class_tree(tmp_path / "src", {"a": 1, "b": 1}, w=40, h=30, ext=".png")
    out = render_dataset(src, tmp_path / "rot", "rot90")
    ds = read_dataset(out).verify()
    assert [s.size for s in ds.samples] == [(40, 30), (40, 30)]
    original, _ = read_image(next(src.rglob("a_0.png")))
    back, _ = read_image(next(out.rglob("a_0.png")))
    assert np.array_equal(back, original)


def test_render_dataset_is_deterministic_and_not_redone(tmp_path):
    src = write_class_tree(tmp_path / "src", {"a": 2}, w=40, h=30)
    one = render_dataset(src, tmp_path / "one", "blur")
    two = render_dataset(src, tmp_path / "two", "blur")
    for p in one.rglob("*.png"):
        assert p.read_bytes() == (two / p.relative_to(one)).read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in one.rglob("*.png")}
    assert render_dataset(src, one, "blur") == one
    assert stamps == {p: p.stat().st_mtime_ns for p in one.rglob("*.png")}, "kept as it was"
    manifest = json.loads((one / shifts.MANIFEST).read_text())
    assert manifest["shift"] == "blur" and manifest["images"] == 2


def test_render_dataset_keeps_the_stored_subject_out_of_the_backlight(tmp_path):
    src = write_class_tree(tmp_path / "src", {"a": 1}, w=100, h=100, ext=".png")
    name = next(src.rglob("*.png")).relative_to(src).as_posix()
    (src / "subjects.jsonl").write_text(json.dumps({"image": name, "box": [0.4, 0.4, 0.6, 0.6]}) + "\n")
    import cv2

    before = cv2.imread(str(src / name))
    after = cv2.imread(str(next(render_dataset(src, tmp_path / "bl", "backlight").rglob("*.png"))))
    assert np.array_equal(after[40:60, 40:60], before[40:60, 40:60])
    assert after[0, 0].mean() > before[0, 0].mean() + 50


def test_render_dataset_wants_class_folders(tmp_path):
    from edge_app.errors import DatasetError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="class folders"):
        render_dataset(tmp_path / "empty", tmp_path / "out", "blur")


def test_rotation_probe_answers():
    assert shifts.rotation_honoured() in (True, False)


def test_a_rerender_drops_images_the_source_no_longer_has(tmp_path):
    import cv2

    from edge_app.train.shifts import render_dataset

    src = tmp_path / "src"
    for name in ("a", "b"):
        (src / "up").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / "up" / (name + ".png")), np.full((32, 32, 3), 100, np.uint8))
    dst = render_dataset(src, tmp_path / "dst", "dark")
    assert sorted(p.name for p in (dst / "up").iterdir()) == ["a.png", "b.png"]
    (src / "up" / "b.png").unlink()
    render_dataset(src, dst, "dark")
    assert sorted(p.name for p in (dst / "up").iterdir()) == ["a.png"]
