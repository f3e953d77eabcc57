"""The live subject search: the camera's look learned, held and pinned; tracking checked
against the picture; the budget on missed frames; MediaPipe's own lines kept off the
terminal; and eval --live measuring the path edge-app run takes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_app.errors import UserError
from edge_app.log import native_stderr
from edge_app.subject.base import Attempt, Subject, SubjectFinder
from edge_app.subject.search import LIVE, LOOKS, SubjectSearch

ROOT = Path(__file__).resolve().parents[1]


def _tinted(value: int = 200) -> np.ndarray:
    """A frame whose 'hand' (a bright square) only shows once the tint is removed: the red
    channel is off the scale in the tinted picture."""
    image = np.full((60, 80, 3), 40, np.uint8)
    image[20:40, 30:50, 0] = value
    image[:, :, 2] = 250   # the tint
    return image


def untint(image: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[:, :, 2] = 40
    return out


class TintBlind(SubjectFinder):
    """Finds the square only where the tint is gone (like MediaPipe on a purple camera); its
    hard-search attempts are the plain picture, then the untinted look."""

    name = "tint-blind"

    def __init__(self, kind="hand", tracking=False):
        super().__init__(kind, tracking)
        self.finds = self.attempted = self.resets = 0
        self.tracked = None   # tracking: the last subject, returned while the tracker holds it

    def _blob(self, image):
        if image[:, :, 2].mean() > 200:
            return None
        ys, xs = np.nonzero(image[:, :, 0] > 150)
        if not len(xs):
            return None
        return Subject(self.kind, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))

    def find(self, image, truth=None):
        self.finds += 1
        if self.tracking and self.tracked is not None:
            return self.tracked   # a naive tracker: holds on to what it had
        found = self._blob(image)
        if self.tracking:
            self.tracked = found
        return found

    def find_again(self, image):
        return self._blob(image)

    def attempts(self, image):
        def run(look):
            self.attempted += 1
            return self._blob(look(image))
        yield Attempt("plain", lambda: run(lambda im: im))
        yield Attempt("untinted", lambda: run(untint))

    def reset(self):
        self.resets += 1
        self.tracked = None


@pytest.fixture
def untinted_look(monkeypatch):
    monkeypatch.setitem(LOOKS, "untinted", untint)


def test_a_look_that_finds_the_subject_is_learned_and_held(untinted_look, caplog):
    finder = TintBlind()
    search = SubjectSearch(finder, replace(LIVE, tracking=False))
    with caplog.at_level(logging.INFO, logger="edge_app"):
        answers = [search.find(_tinted()) for _ in range(6)]
    assert all(a is not None for a in answers), "the hard attempts find it from the first frame"
    assert search.look == "untinted" and search.changes == 1
    assert "camera look: untinted" in caplog.text
    tried = finder.attempted
    assert search.find(_tinted()) is not None and finder.attempted == tried, \
        "once held, the look's own search finds it: no hard attempts any more"


def test_a_pinned_look_is_never_changed_and_unknown_looks_are_one_line(untinted_look):
    search = SubjectSearch(TintBlind(), replace(LIVE, tracking=False), look="plain")
    assert all(search.find(_tinted()) is None for _ in range(5))
    assert search.look == "plain" and search.changes == 0
    with pytest.raises(UserError, match="unknown camera look 'purple'; choose from plain"):
        SubjectSearch(TintBlind(), look="purple")


def test_the_look_goes_back_to_plain_when_the_camera_does(untinted_look):
    search = SubjectSearch(TintBlind(), replace(LIVE, tracking=False))
    for _ in range(5):
        search.find(_tinted())
    assert search.look == "untinted"
    clean = untint(_tinted())
    for _ in range(60):   # the untinted look of a clean picture finds it too: both count
        assert search.find(clean) is not None
    assert search.look == "untinted", "a look that still finds is not dropped for nothing"


def test_missed_frames_spend_a_budget_then_back_off(untinted_look):
    finder = TintBlind()
    policy = replace(LIVE, tracking=False, budget=1, new_scene_budget=1, patience=3, backoff=4)
    search = SubjectSearch(finder, policy)
    empty = np.full((60, 80, 3), 40, np.uint8)
    for _ in range(3 + 8):
        assert search.find(empty) is None
    assert finder.attempted == 3 + 2, "every missed frame during patience, then every 4th"


def test_a_scene_change_ends_tracking_so_stills_score_as_without_it(untinted_look):
    """A naive tracker holds on to the first still's subject; with the scene check every
    still is searched afresh, as --no-tracking does."""
    stills = []
    for i in range(6):
        image = np.full((60, 80, 3), 40 + 30 * (i % 2), np.uint8)
        x = 5 + 10 * i
        image[20:40, x:x + 20, 0] = 200
        stills.append(image)
    tracked = SubjectSearch(TintBlind(tracking=True), LIVE)
    fresh = SubjectSearch(TintBlind(), replace(LIVE, tracking=False))
    a = [tracked.find(s).box for s in stills]
    b = [fresh.find(s).box for s in stills]
    assert a == b
    naive = TintBlind(tracking=True)
    assert len({naive.find(s).box for s in stills}) == 1, "the fake tracker does hold on"


def test_a_tracker_that_drifted_is_caught_by_the_fresh_search(untinted_look):
    finder = TintBlind(tracking=True)
    search = SubjectSearch(finder, replace(LIVE, fresh_every=3, scene_change=1.0))
    frame = np.full((60, 80, 3), 40, np.uint8)
    frame[20:40, 10:30, 0] = 200
    assert search.find(frame).box[0] == 10
    moved = np.full((60, 80, 3), 40, np.uint8)
    moved[20:40, 50:70, 0] = 200   # the hand moved; the small scene change is not caught
    boxes = [search.find(moved).box[0] for _ in range(3)]
    assert boxes[0] == 10, "the naive tracker still reports the old place"
    assert boxes[-1] == 50 and finder.resets >= 1, "the fresh search put it right"


def test_native_lines_are_kept_off_the_terminal_and_nothing_else_is(capfd):
    logging.getLogger("edge_app").setLevel(logging.INFO)
    with native_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"W0000 00:00:1796687223.960174    7160 inference_feedback_manager.cc:114] x\n")
        os.write(2, b"a line of ours\n")
    err = capfd.readouterr().err
    assert err == "a line of ours\n"


def test_native_lines_show_with_verbose(capfd):
    logger = logging.getLogger("edge_app")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with native_stderr():
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    finally:
        logger.setLevel(old)
    assert "TensorFlow Lite" in capfd.readouterr().err


def test_eval_and_live_run_the_same_attempts():
    """One search: eval's hard search is the first of the provider's attempts that finds, and
    the live loop's budget draws from the same sequence, plain picture first."""
    from edge_app.subject.base import hard_attempts

    seen = []

    def weak(image):
        seen.append(image.shape)
        return None

    names = [a.look for a in hard_attempts(weak, np.full((100, 100, 3), 90, np.uint8))]
    assert names[:3] == ["plain"] * 3 and names[3:5] == ["grey_world"] * 2
    assert names.count("window") == 9 and "upscaled" in names
    assert set(LOOKS) - {"plain"} <= set(names), "every holdable look is one the hard search tries"

    class Counting(TintBlind):
        pass

    finder = Counting()
    assert finder.find_hard(_tinted()) is not None and finder.attempted == 2


@pytest.mark.slow
@pytest.mark.shared_data
def test_eval_live_on_another_persons_purple_camera(shared_data, tmp_path):
    """Trained on one person's thumbs, evaluated on another's rendered through the purple
    tint: the live figure is printed beside the hard search's, the JSON has both and each
    image's answer, and no MediaPipe or TensorFlow Lite line reaches the terminal."""
    pytest.importorskip("torch")
    from edge_app.subject.mediapipe_finder import mediapipe_available
    from edge_app.train.shifts import render_dataset

    if not mediapipe_available():
        pytest.skip("MediaPipe is not installed")
    bundle = tmp_path / "b"
    env = dict(os.environ, EDGE_APP_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "edge_app"]
    train = subprocess.run(cmd + ["train", "--task", "thumbs", "--data",
                                  str(shared_data / "thumbs" / "dharshini"), "--out", str(bundle),
                                  "--mode", "fast"], capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr
    purple = tmp_path / "purple"
    render_dataset(shared_data / "thumbs" / "leticiacechinel", purple, "purple")
    report = tmp_path / "e.json"
    ev = subprocess.run(cmd + ["eval", "--model", str(bundle), "--data", str(purple), "--live",
                               "--json", str(report)], capture_output=True, text=True, env=env)
    assert ev.returncode == 0, ev.stderr
    for out in (train, ev):
        text = out.stdout + out.stderr
        assert "TensorFlow Lite" not in text and "W0000" not in text and "absl::" not in text
    assert "live, run --source on these folders" in ev.stdout
    result = json.loads(report.read_text())
    live, camera = result["live"], result["live_camera"]
    assert live["n"] == camera["n"] == result["n"] == len(live["answers"]) == len(result["answers"])
    assert live["accuracy"] == result["accuracy"], "a folder's pictures get eval's search"
    assert camera["accuracy"] >= result["accuracy"] - 0.03, (camera["accuracy"], result["accuracy"])
    assert camera["looks"]["hand"] != "plain", "the purple camera's look was learned"


def test_look_on_the_source_is_taken_out_of_the_uri_and_pins_the_search(tmp_path, untinted_look):
    from edge_app.sources import open_source
    from edge_app.subject.providers import PROVIDERS
    from edge_app.subject.stage import SubjectStage

    from helpers import write_image

    write_image(tmp_path / "a.jpg")
    source = open_source(f"{tmp_path}?look=untinted&rotate=90")
    assert source.look == "untinted" and source.rotate == 90 and "?" not in source.uri
    assert open_source(str(tmp_path)).look is None
    PROVIDERS["tint-blind"] = TintBlind
    try:
        stage = SubjectStage(["hand"], "tint-blind", tracking=False, look=source.look)
        assert stage.looks() == {"hand": "untinted"}
        assert stage.find(_tinted())["hand"] is not None, "the pinned look is searched"
        with pytest.raises(UserError, match="unknown camera look"):
            SubjectStage(["hand"], "tint-blind", look="sepia")
    finally:
        del PROVIDERS["tint-blind"]


def test_settle_look_reports_where_each_kind_settled(untinted_look):
    from edge_app.subject.providers import PROVIDERS
    from edge_app.subject.search import settle_look

    PROVIDERS["tint-blind"] = TintBlind
    try:
        reports = settle_look(((_tinted(), None) for _ in range(20)), kinds=("hand",),
                              provider="tint-blind")
    finally:
        del PROVIDERS["tint-blind"]
    assert [(r.kind, r.look, r.found, r.frames) for r in reports] == [("hand", "untinted", 20, 20)]
    assert reports[0].line() == "hand: untinted (found in 20 of 20 frames)"
