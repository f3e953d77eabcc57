"""The capture tool: headless runs give datasets the reader accepts; window logic works
without a display; a full disk stops cleanly with nothing lost."""
from __future__ import annotations

import numpy as np

from edge_app.capture.session import CaptureSession
from edge_app.capture.window import CaptureWindow, draw_overlay
from edge_app.cli import main
from edge_app.dataset.formats import read_dataset
from edge_app.dataset.info import summarize
from edge_app.sources import FrameReader, open_source
from edge_app.sources.base import Frame
from edge_app.tasks.spec import load_task

from helpers import disk_full_after


def test_headless_fingers_capture_is_a_valid_dataset(tmp_path, capsys):
    out = tmp_path / "f"
    code = main(["capture", "--task", "fingers", "--source", "sim://fingers?seed=1", "--headless",
                 "--count", "50", "--out", str(out), "--no-progress"])
    assert code == 0
    ds = read_dataset(out).verify()
    info = summarize(ds)
    assert info["images"] == 50 and info["counts"] == {c: 10 for c in "12345"}
    assert not info["problems"] and info["task"] == "fingers"
    assert "saved 50 image(s)" in capsys.readouterr().out
    subjects = (out / "subjects.jsonl").read_text().splitlines()
    assert len(subjects) == 50, "the simulator's box and landmarks are stored beside each image"
    assert main(["data", "info", str(out)]) == 0


def test_headless_keypoint_capture_from_ground_truth(tmp_path):
    out = tmp_path / "face"
    assert main(["capture", "--task", "face", "--source", "sim://face?seed=2&width=320&height=240",
                 "--headless", "--count", "12", "--out", str(out), "--no-progress"]) == 0
    ds = read_dataset(out).verify()
    assert len(ds.samples) == 12 and ds.coords == "normalized"
    pts = np.stack([s.points for s in ds.samples])
    assert not np.isnan(pts).any() and (pts > 0).all() and (pts < 1).all()


def test_headless_label_poses_the_simulator(tmp_path):
    out = tmp_path / "t"
    assert main(["capture", "--task", "thumbs", "--source", "sim://thumbs", "--headless",
                 "--label", "thumbs_down", "--count", "5", "--out", str(out), "--no-progress"]) == 0
    assert read_dataset(out).counts() == {"thumbs_up": 0, "thumbs_down": 5}


def test_capture_adds_to_a_dataset_and_refuses_another_task(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["capture", "--source", "sim://thumbs", "--headless", "--count", "4", "--out", str(out),
            "--no-progress"]
    assert main(args + ["--task", "thumbs"]) == 0
    assert main(args + ["--task", "thumbs"]) == 0
    assert sum(read_dataset(out).counts().values()) == 8
    capsys.readouterr()
    assert main(["capture", "--task", "fingers", "--source", "sim://fingers", "--headless",
                 "--count", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a dataset for task 'thumbs'" in err


def test_headless_on_a_camera_needs_a_label(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    assert main(["capture", "--task", "thumbs", "--source", str(folder), "--headless",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--headless needs --label" in capsys.readouterr().err


def test_full_disk_during_capture_is_one_line_and_keeps_saved_images(tmp_path, monkeypatch, capsys):
    disk_full_after(monkeypatch, 3)
    out = tmp_path / "t"
    code = main(["capture", "--task", "thumbs", "--source", "sim://thumbs", "--headless",
                 "--count", "10", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "disk full" in err and err.count("\n") == 1
    ds = read_dataset(out).verify()
    assert len(ds.samples) == 3 and not ds.problems


def _frame(i=0, w=200, h=100):
    return Frame(np.full((h, w, 3), 60, np.uint8), i, 0.0)


def test_keypoint_clicks_freeze_place_and_save(tmp_path):
    session = CaptureSession(load_task("face"), tmp_path / "kp")
    first, later = _frame(0), _frame(1)
    assert not session.place_point(first, 0.5, 0.6)        # nose
    assert session.current == "left_eye"
    session.place_point(later, 0.7, 0.4)                    # still labels the frozen frame
    assert session.frozen is first
    session.remove_point("left_eye")
    session.place_point(later, 0.72, 0.41)
    assert session.save_points()
    session.close()
    ds = read_dataset(tmp_path / "kp")
    assert len(ds.samples) == 1
    assert np.allclose(ds.samples[0].points[:2], [(0.5, 0.6), (0.72, 0.41)])
    assert np.isnan(ds.samples[0].points[2]).all(), "an unplaced point is missing, not guessed"


def test_one_point_task_saves_on_click(tmp_path):
    path = tmp_path / "nose.yaml"
    path.write_text("name: nose\nkind: keypoints\npoints: [nose]\n")
    session = CaptureSession(load_task(str(path)), tmp_path / "n")
    assert session.place_point(_frame(), 0.25, 0.75)
    session.close()
    assert len(read_dataset(tmp_path / "n").samples) == 1


def test_window_keys_and_mouse_without_a_display(tmp_path):
    import cv2

    source = open_source("sim://thumbs?seed=4&width=320&height=240")
    session = CaptureSession(load_task("thumbs"), tmp_path / "w")
    with FrameReader(source) as reader:
        window = CaptureWindow(reader, session, interval=0.0)
        window.frame = reader.get(timeout=2)
        assert window.handle_key(ord("2")) and session.current == "thumbs_down"
        for _ in range(4):   # frames rendered before the key press may still be queued
            window.frame = reader.get(timeout=2)
        assert window.frame.truth["label"] == "thumbs_down", "the sim poses the selected class"
        window.handle_key(ord(" "))
        window.handle_key(ord("\t"))
        assert session.current == "thumbs_up"
        window.handle_key(ord(" "))
        window.handle_click(cv2.EVENT_LBUTTONDOWN, 10, 10)   # ignored for classes
        image = draw_overlay(window.frame.image, session, burst=True, message="saved")
        assert image.shape == window.frame.image.shape
        assert not np.array_equal(image, window.frame.image)
        assert not window.handle_key(ord("q"))
    session.close()
    assert read_dataset(tmp_path / "w").counts() == {"thumbs_up": 1, "thumbs_down": 1}


def test_window_mode_without_display_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["capture", "--task", "thumbs", "--source", "sim://thumbs",
                 "--out", str(tmp_path / "x")]) == 2
    assert "use --headless" in capsys.readouterr().err
