"""The live loop: backends agree, annotators draw where they should, outputs are complete and
playable, a dying source is survived, SIGTERM shuts down cleanly."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_app.annotate import Context, FpsAnnotator, LabelAnnotator, PointsAnnotator, annotate
from edge_app.cli import main
from edge_app.model.results import ClassResult, NoSubject, PointsResult

from helpers import HANG_GUARD, FakeSource, read_jsonl, sim_bundle, wait_for, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A thumbs bundle (crop CNN) with model.onnx (needs the train and export extras);
    training it is slow, so every test that takes it is marked slow."""
    return sim_bundle(tmp_path_factory.mktemp("runtime"), "thumbs", 120, 96, extra=("--views", "1"))


def _video_frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.slow
def test_sim_run_records_and_matches_ground_truth(bundle, tmp_path, capsys):
    video, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    assert main(["run", "--model", str(bundle), "--source", "sim://thumbs?seed=7&width=256&height=192",
                 "--headless", "--frames", "60", "--record", str(video), "--json-out", str(log)]) == 0
    out = capsys.readouterr().out
    assert "on onnx (CPU" in out and "median ms per stage" in out
    rows = read_jsonl(log)
    assert len(rows) == 60 and _video_frames(video) == 60
    assert [r["frame"] for r in rows] == list(range(60))
    agree = np.mean([r["results"][0]["label"] == r["truth"]["label"] for r in rows])
    trained = json.loads((bundle / "bundle.json").read_text())["metrics"]["accuracy"]
    assert agree >= min(0.6, trained - 0.2), "predictions follow the simulator's ground truth"
    # A frame's line is written by the output stage, so it carries the stages before it.
    assert {"grab", "preprocess", "infer", "decode", "smooth", "annotate"} <= set(rows[1]["timings_ms"])


@pytest.mark.slow
def test_video_file_and_image_folder_sources(bundle, tmp_path):
    import cv2

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(15):
        writer.write(np.full((120, 160, 3), 10 * i, np.uint8))
    writer.release()
    folder = tmp_path / "photos"
    for i in range(4):
        write_image(folder / f"{i}.jpg", 160, 120, value=40 * i)
    for source, n in ((clip, 15), (folder, 4)):
        log = tmp_path / (source.name + ".jsonl")
        assert main(["run", "--model", str(bundle), "--source", str(source), "--headless",
                     "--json-out", str(log), "--subject-provider", "whole"]) == 0
        rows = read_jsonl(log)
        assert len(rows) == n, "every frame of a file is processed, none twice"
    assert rows[0]["path"].endswith("0.jpg")


@pytest.mark.slow
def test_crop_model_says_no_subject_instead_of_guessing(bundle, tmp_path, capsys):
    """The bundle learnt from hand crops; frames without a hand get "no hand", not a class."""
    folder = tmp_path / "empty_room"
    for i in range(3):
        write_image(folder / f"{i}.jpg", 160, 120, value=60 * i)
    log, video = tmp_path / "none.jsonl", tmp_path / "none.avi"
    assert main(["run", "--model", str(bundle), "--source", str(folder), "--headless",
                 "--json-out", str(log), "--subject-provider", "truth", "--record", str(video)]) == 0
    assert "subject stage: hand" in capsys.readouterr().out
    rows = read_jsonl(log)
    assert [r["results"][0]["type"] for r in rows] == ["none"] * 3
    assert all(r["results"][0]["label"] is None and "infer" not in r["timings_ms"] for r in rows)
    from edge_app.annotate import LabelAnnotator

    frame = np.zeros((240, 320, 3), np.uint8)
    LabelAnnotator().draw(frame, NoSubject("hand"), Context())
    assert frame[:40, :120].any(), "'no hand' drawn top left"


@pytest.mark.slow
def test_a_noisy_camera_is_smoothed_for_the_search(bundle, tmp_path, capsys):
    """--denoise auto notices a noisy camera and says so; off leaves the frames alone. (A
    camera's frames: a folder's pictures are searched as eval searches stills.)"""
    import cv2

    from edge_app.train.shifts import apply_shift

    video = tmp_path / "dim_room.avi"   # FFV1: lossless, as a CSI camera's raw frames
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30, (160, 120))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write FFV1 video")
    for i in range(3):
        writer.write(apply_shift(np.full((120, 160, 3), 90 + i, np.uint8), "noise"))
    writer.release()
    for mode, said in (("auto", True), ("off", False)):
        assert main(["run", "--model", str(bundle), "--source", str(video), "--headless",
                     "--subject-provider", "whole", "--denoise", mode]) == 0
        out = capsys.readouterr().out
        assert "denoise " + mode in out
        assert ("the subject search smooths frames" in out) == said, out


@pytest.mark.slow
def test_crop_model_boxes_follow_the_simulated_hand(bundle, tmp_path):
    log = tmp_path / "sim.jsonl"
    assert main(["run", "--model", str(bundle), "--source", "sim://thumbs?seed=4&width=320&height=240",
                 "--headless", "--frames", "10", "--json-out", str(log)]) == 0
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["input_plan"]["input"] == "crop" and meta["input_plan"]["subject"] == "hand"
    for row in read_jsonl(log):
        assert row["results"][0]["subject"]["box"] == row["truth"]["subject"]["box"]
        assert "subject" in row["timings_ms"]


@pytest.mark.slow
def test_backends_agree_on_the_same_frames(bundle):
    from edge_app.backends.ort import OnnxBackend
    from edge_app.model.info import load_model_info
    from edge_app.model.preprocess import to_model_input
    from edge_app.sources import open_source
    from edge_app.train.torch_backend import TorchBackend

    info = load_model_info(str(bundle))
    src = open_source("sim://thumbs?seed=11&width=256&height=192")
    src.open()
    batch = np.stack([to_model_input(src.read().image, info.input_size) for _ in range(8)])
    outs = []
    for backend in (OnnxBackend(), TorchBackend()):
        backend.load(info)
        outs.append(backend.infer(batch))
    assert np.abs(outs[0] - outs[1]).max() < 1e-4
    assert (outs[0].argmax(1) == outs[1].argmax(1)).all()


@pytest.mark.slow
def test_onnx_file_as_model_and_two_models_on_one_stream(bundle, tmp_path):
    log = tmp_path / "o.jsonl"
    assert main(["run", "--model", str(bundle / "model.onnx"), "--model", str(bundle),
                 "--backend", "onnx", "--source", "sim://thumbs?seed=2", "--headless",
                 "--frames", "5", "--json-out", str(log)]) == 0
    rows = read_jsonl(log)
    assert len(rows) == 5 and [r["model"] for r in rows[0]["results"]] == ["model", "thumbs"]
    assert rows[0]["results"][0]["scores"] == rows[0]["results"][1]["scores"]


def test_annotators_draw_where_they_should():
    frame = np.zeros((480, 640, 3), np.uint8)
    points = PointsResult(("nose", "left_eye"), np.array([[0.25, 0.5], [0.75, 0.25]]))
    PointsAnnotator().draw(frame, points, Context())
    for x, y in ((160, 240), (480, 120)):
        assert frame[y - 3:y + 4, x - 3:x + 4].any(), "a marker at the point"
    assert not frame[400:, :100].any()
    frame[:] = 0
    result = ClassResult(("thumbs_up", "thumbs_down"), np.array([0.9, 0.1], np.float32))
    annotate(frame, [result], Context(fps=30.0, stages_ms={"infer": 5.0}),
             [LabelAnnotator(), FpsAnnotator()])
    assert frame[:120, :250].any(), "label and bars, top left"
    assert frame[:60, 400:].any(), "FPS, top right"
    assert not frame[300:, 250:400].any()


def test_overlays_are_sized_to_the_frame():
    """A 256 px preview is not covered by text sized for 640 px: the overlays take about the
    same share of it, the stage table is left out, the status line is cut to fit."""
    from edge_app.annotate import default_annotators

    result = ClassResult(("thumbs_up", "thumbs_down"), np.array([0.7, 0.3], np.float32))
    ctx = Context(fps=30.0, stages_ms={s: 1.0 for s in ("grab", "infer", "collect", "annotate")},
                  status="onnx (CPU, 2 threads) | fp32 | input 64x64 | sim://thumbs 256x192 SIM " * 2)
    share = {}
    for w, h in ((256, 192), (640, 480)):
        frame = np.zeros((h, w, 3), np.uint8)
        annotate(frame, [result], ctx, default_annotators())
        share[w] = frame.any(axis=2).mean()
        assert not frame[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].any(), "the middle stays clear"
        assert frame[-12:].any(), "the status line is there"
    # text sized for 640 px covered ~4x the share of a 256 px frame; glyphs differ a little
    # between OpenCV releases (4.5.4 on JetPack 5 draws them ~1.7x)
    assert share[256] < 0.2 and share[256] < 2.0 * share[640], share


@pytest.mark.slow
def test_collect_keeps_hard_frames_and_a_link_is_watched(bundle, tmp_path, capsys):
    import os

    from edge_app.runtime.collect import COLLECTED, read_lines

    link = tmp_path / "current"
    os.symlink(str(bundle), str(link))
    collected = tmp_path / "collected"
    assert main(["run", "--model", str(link), "--source", "sim://thumbs?seed=4&width=256&height=192&fps=30",
                 "--headless", "--frames", "60", "--collect", str(collected), "--collect-every", "0.1",
                 "--collect-below", "0.99", "--json-out", str(tmp_path / "out.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "collect current:" in out and "collect " in out.split("median ms per stage")[1]
    rows = read_lines(collected / "current" / COLLECTED)
    assert rows and all((collected / "current" / r["file"]).is_file() for r in rows)
    assert {r["reason"] for r in rows} <= {"unsure", "flip", "lost", "drift"}
    meta = json.loads((collected / "current/model.json").read_text())
    assert meta["link"] == str(link) and meta["bundle"] == str(bundle.resolve())
    assert read_jsonl(tmp_path / "out.jsonl")[0]["results"][0]["bundle"] == bundle.name


@pytest.mark.slow
def test_source_dying_mid_run_is_survived(bundle):
    from edge_app.backends.ort import OnnxBackend
    from edge_app.model.info import load_model_info
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.sources import FrameReader, open_source

    info = load_model_info(str(bundle))
    backend = OnnxBackend()
    backend.load(info)

    class Camera(FakeSource):
        def _grab(self):
            got = super()._grab()
            return (np.full((120, 160, 3), 90, np.uint8), {}) if got else None

    src = Camera(live=True, lose_at=5, reopen_failures=1, delay=0.005)
    with FrameReader(src, backoff=0.01, max_backoff=0.02) as reader:
        stats = run_loop(reader, [Runner(info, backend)], max_frames=20)
        assert reader.reconnects == 1
    assert stats.frames == 20
    assert open_source   # the same factory serves real cameras


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_closes_the_recording(bundle, tmp_path):
    video = tmp_path / "live.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "edge_app", "run", "--model", str(bundle),
                             "--source", "sim://thumbs?fps=30&width=256&height=192", "--headless",
                             "--record", str(video)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    parts = video.with_name(video.name + ".parts")   # segments appear while it records
    wait_for(lambda: parts.exists() and len(list(parts.glob("*.mp4"))) >= 2, "a closed segment")
    proc.send_signal(signal.SIGTERM)   # the source never ends: only the signal stops it
    out, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 0, err
    assert "(stopped)" in out
    assert _video_frames(video) > 10, "the recording is closed properly and playable"


@pytest.mark.slow
def test_model_errors_are_one_line(bundle, tmp_path, capsys):
    assert main(["run", "--model", str(tmp_path / "nope"), "--source", "sim://thumbs", "--headless"]) == 2
    assert "not found" in capsys.readouterr().err
    no_onnx = tmp_path / "copy"
    no_onnx.mkdir()
    (no_onnx / "bundle.json").write_text((bundle / "bundle.json").read_text())
    assert main(["run", "--model", str(no_onnx), "--backend", "onnx", "--source", "sim://thumbs",
                 "--headless"]) == 2
    assert "run edge-app export" in capsys.readouterr().err
    assert threading.active_count() < 20


@pytest.mark.slow
def test_serve_streams_mjpeg_and_results(bundle):
    import urllib.request

    from edge_app.backends.ort import OnnxBackend
    from edge_app.model.info import load_model_info
    from edge_app.runtime.loop import Runner, run_loop
    from edge_app.runtime.serve import ServeSink
    from edge_app.sources import FrameReader, open_source

    info = load_model_info(str(bundle))
    backend = OnnxBackend()
    backend.load(info)
    server = ServeSink("127.0.0.1:0")
    stop = threading.Event()
    src = open_source("sim://thumbs?fps=30&width=256&height=192&seed=4")
    with FrameReader(src) as reader:
        loop = threading.Thread(target=run_loop, args=(reader, [Runner(info, backend)], [server]),
                                kwargs={"stop": stop})
        loop.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            time.sleep(0.5)
            results = json.loads(urllib.request.urlopen(base + "/results", timeout=5).read())
            assert results["results"][0]["label"] in ("thumbs_up", "thumbs_down")
            stream = urllib.request.urlopen(base + "/stream", timeout=5)
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            chunk = stream.read(4096)
            assert b"--frame" in chunk and b"\xff\xd8" in chunk, "JPEG parts"
            stream.close()
        finally:
            stop.set()
            loop.join(5)
            server.close()
    assert not loop.is_alive()


@pytest.mark.slow
def test_trt_backend(bundle, tmp_path, capsys):
    from edge_app.export.tensorrt_build import tensorrt_available

    if not tensorrt_available():
        assert main(["run", "--model", str(bundle), "--backend", "trt", "--source", "sim://thumbs",
                     "--headless", "--frames", "1"]) == 2
        assert "TensorRT is not installed" in capsys.readouterr().err
        pytest.skip("TensorRT is not installed: the engine path runs on the Jetson")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    log = tmp_path / "trt.jsonl"
    assert main(["run", "--model", str(bundle), "--backend", "trt", "--source", "sim://thumbs?seed=3",
                 "--headless", "--frames", "20", "--json-out", str(log)]) == 0
    assert len(read_jsonl(log)) == 20
