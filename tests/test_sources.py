"""The source factory, files, folders and the camera error paths that can run without one."""
from __future__ import annotations

import numpy as np
import pytest

from edge_app.errors import SourceError, UserError
from edge_app.sources import FrameReader, open_source
from edge_app.sources.video import CSICamera, V4L2Camera, csi_pipeline

from helpers import write_image


def test_factory_picks_the_source_kind(tmp_path):
    cam = open_source("usb:2?width=1280&height=720&fps=30")
    assert isinstance(cam, V4L2Camera) and cam.device == "/dev/video2"
    assert cam.requested == (1280, 720, 30.0, "MJPG"), "USB cameras are asked for MJPG"
    assert isinstance(open_source("/dev/video1"), V4L2Camera)
    assert open_source("3").device == "/dev/video3"
    assert isinstance(open_source("csi://0", width=1920, height=1080), CSICamera)
    assert "nvarguscamerasrc sensor-id=1" in csi_pipeline(1, 1280, 720, 30)
    assert open_source("sim://face").has_truth


@pytest.mark.parametrize("uri,match", [
    ("nothing-here.mp4", "not found"),
    ("usb:0?width=wide", "must be a number"),
    ("sim://thumbs?colour=1", "unknown option 'colour'"),
    ("sim://thumbz", "did you mean 'thumbs'"),
    ("csi://left", "sensor number"),
])
def test_bad_source_uris_say_what_to_do(uri, match):
    with pytest.raises(UserError, match=match):
        open_source(uri)


def test_unplugged_camera_is_one_clear_line():
    cam = open_source("usb:57")
    with pytest.raises(SourceError) as err:
        cam.open()
    assert "/dev/video57 not found" in str(err.value) and "usb:N" in str(err.value)


def test_csi_without_gstreamer_says_why():
    import cv2

    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer; the error path does not apply")
    with pytest.raises(SourceError, match="without GStreamer"):
        open_source("csi://0").open()


def test_video_file_source_reads_every_frame(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (96, 64))
    for i in range(12):
        writer.write(np.full((64, 96, 3), i * 20, np.uint8))
    writer.release()
    with FrameReader(open_source(str(path))) as reader:
        frames = list(reader)
    assert [f.id for f in frames] == list(range(12))
    assert abs(int(frames[5].image.mean()) - 100) <= 3, "frames come in order"


def test_broken_video_file_is_one_line(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="not a video OpenCV can decode"):
        open_source(str(path)).open()


def test_image_folder_skips_unreadable_files(tmp_path):
    for i in range(3):
        write_image(tmp_path / "a" / f"img{i}.png", value=50 * i)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"garbage")
    src = open_source(str(tmp_path))
    with FrameReader(src) as reader:
        frames = list(reader)
    assert len(frames) == 3 and all(f.path.endswith(".png") for f in frames)
    assert src.skipped and src.skipped[0].endswith("broken.jpg")


def test_empty_folder_source(tmp_path):
    with pytest.raises(SourceError, match="no images found"):
        open_source(str(tmp_path)).open()


def test_sim_count_ends_the_stream():
    with FrameReader(open_source("sim://thumbs?count=7&width=64&height=48")) as reader:
        assert len(list(reader)) == 7
