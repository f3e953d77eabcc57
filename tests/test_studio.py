"""The browser studio: its API through Starlette's test client (tokens, validation, capture,
bursts, keypoints, delete, training and inference errors), and the whole course loop in a real
headless browser (Debian's chromium driven by Playwright), with a screenshot kept as an
artifact."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from helpers import FAST_TRAIN, HANG_GUARD, checked

pytest.importorskip("starlette")
pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8080"   # a name the studio answers to (it refuses others: DNS rebinding)
ARTIFACTS = Path(os.environ.get("EDGE_APP_ARTIFACTS", ROOT / "artifacts"))
TRAIN_ARGS = [a for a in FAST_TRAIN if a != "--no-progress"]


def _studio(tmp_path, task="thumbs", source="sim://{}?width=256&height=192&fps=30"):
    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    return checked(Studio(load_task(task), source.format(task), tmp_path / "data", tmp_path / "runs",
                          TRAIN_ARGS).start())


@pytest.fixture
def client(tmp_path):
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    studio = _studio(tmp_path)
    with TestClient(build_app(studio, token="secret"), base_url=BASE, headers={"X-Token": "secret"}) as c:
        c.studio = studio
        _wait(lambda: c.get("/frame.jpg").content, "a first frame")
        yield c
    studio.close()


def _wait(check, what, timeout=HANG_GUARD):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _files(root, folder):
    return sorted(p.name for p in (root / folder).glob("*.jpg")) if (root / folder).is_dir() else []


def test_token_is_required_and_checked(client):
    from starlette.testclient import TestClient

    bare = TestClient(client.app, base_url=BASE)
    r = bare.get("/api/state")
    assert r.status_code == 401 and "access token" in r.json()["error"]
    assert bare.get("/api/state", headers={"X-Token": "wrong"}).status_code == 401
    page = bare.get("/?token=secret")
    assert page.status_code == 200 and "edge-app studio" in page.text
    assert bare.get("/api/state").status_code == 200, "the page's cookie lets the stream and API in"
    assert bare.get("/static/app.js").status_code == 200


def test_capture_select_and_counts(client, tmp_path):
    data = tmp_path / "data"
    assert client.post("/api/select", json={"label": "thumbs_down"}).status_code == 200
    assert client.post("/api/capture", json={"label": "thumbs_down"}).json() == {"ok": True}
    _wait(lambda: _files(data, "thumbs_down"), "the file on disk")
    state = client.get("/api/state").json()
    assert state["counts"] == {"thumbs_up": 0, "thumbs_down": 1} and state["selected"] == "thumbs_down"
    assert state["recent"][0]["folder"] == "thumbs_down"
    truth = (data / "subjects.jsonl").read_text()
    assert "thumbs_down/" in truth, "the simulator's subject box is stored beside the image"


@pytest.mark.parametrize("label", ["../etc", "thumbs_up/../x", "", "THUMBS_UP"])
def test_names_from_the_page_are_validated(client, tmp_path, label):
    r = client.post("/api/capture", json={"label": label})
    assert r.status_code == 400 and "error" in r.json()
    assert not any((tmp_path / "data").glob("**/*.jpg"))


@pytest.mark.parametrize("path", ["/api/samples/thumbs_up/..%2Fdataset.yaml", "/api/samples/..%2F..%2Fetc/passwd",
                                  "/api/samples/thumbs_up/missing.jpg", "/api/samples/images/x.jpg"])
def test_sample_paths_cannot_leave_the_dataset(client, path):
    assert client.get(path).status_code in (400, 404)
    assert client.delete(path).status_code in (400, 404)


def test_bad_requests_are_one_line(client):
    as_json = {"Content-Type": "application/json"}
    assert client.post("/api/capture", content=b"not json", headers=as_json).json()["error"] == \
        "the request body must be JSON"
    assert client.post("/api/capture", content=b'{"label": "thumbs_up"}').status_code == 415, "JSON's type only"
    assert "must be a number" in client.post("/api/point", json={"name": "x", "x": "a", "y": 1}).json()["error"]
    assert client.post("/api/train", json={}).json()["error"].startswith("the dataset is empty")
    assert client.post("/api/mode", json={"mode": "infer"}).json()["error"].startswith("no trained model yet")
    assert client.post("/api/mode", json={"mode": "dance"}).status_code == 400


@pytest.mark.slow   # about 4 s of held and released bursts
def test_burst_saves_until_released_and_stops_without_the_browser(client, tmp_path):
    from edge_app.studio.core import BURST_HOLD

    data = tmp_path / "data"
    client.post("/api/select", json={"label": "thumbs_up"})
    client.post("/api/burst", json={"label": "thumbs_up", "on": True})
    time.sleep(0.8)
    client.post("/api/burst", json={"label": "thumbs_up", "on": False})
    _wait(lambda: client.studio.session.writer.pending == 0, "the writer")
    saved = len(_files(data, "thumbs_up"))
    assert saved >= 3, saved
    time.sleep(0.5)
    assert len(_files(data, "thumbs_up")) == saved, "nothing after release"
    client.post("/api/burst", json={"label": "thumbs_up", "on": True})   # then the browser goes away
    time.sleep(BURST_HOLD + 0.8)
    _wait(lambda: client.studio.session.writer.pending == 0, "the writer")
    after = len(_files(data, "thumbs_up"))
    time.sleep(0.5)
    assert after > saved and len(_files(data, "thumbs_up")) == after, "a burst without keep-alive ends"


def test_delete_moves_the_sample_aside(client, tmp_path):
    data = tmp_path / "data"
    client.post("/api/capture", json={"label": "thumbs_up"})
    name = _wait(lambda: _files(data, "thumbs_up"), "the file")[0]
    assert client.get("/api/samples/thumbs_up/" + name).headers["content-type"] == "image/jpeg"
    assert client.delete("/api/samples/thumbs_up/" + name).status_code == 200
    assert _files(data, "thumbs_up") == [] and (data / ".deleted/thumbs_up" / name).is_file()
    assert client.get("/api/state").json()["counts"]["thumbs_up"] == 0


def test_keypoints_are_placed_by_clicks_and_deleted_with_their_row(tmp_path):
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    studio = _studio(tmp_path, task="face")
    try:
        c = TestClient(build_app(studio), base_url=BASE)
        _wait(lambda: c.get("/frame.jpg").content, "a first frame")
        assert c.post("/api/capture", json={"label": "nose"}).status_code == 400, "points are clicked"
        assert c.post("/api/point", json={"name": "nose", "x": 0.5, "y": 0.6}).json() == {"saved": False}
        assert c.get("/api/state").json()["placed"] == {"nose": [0.5, 0.6]}
        assert c.post("/api/point", json={"name": "left_eye", "x": 0.6, "y": 0.4}).json() == {"saved": False}
        assert c.post("/api/point", json={"name": "right_eye", "x": 0.4, "y": 0.4}).json() == {"saved": True}
        _wait(lambda: studio.session.writer.pending == 0 and _files(tmp_path / "data", "images"), "the file")
        rows = (tmp_path / "data/labels.csv").read_text().splitlines()
        assert len(rows) == 2 and rows[1].endswith("0.500000,0.600000,0.600000,0.400000,0.400000,0.400000")
        name = _files(tmp_path / "data", "images")[0]
        assert c.delete("/api/samples/images/" + name).status_code == 200
        assert (tmp_path / "data/labels.csv").read_text().splitlines() == rows[:1]
        assert c.post("/api/point", json={"name": "nose", "x": 1.5, "y": 0.5}).status_code == 400
    finally:
        studio.close()


# -- the real browser -----------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    """The studio served by uvicorn on a free port, as `edge-app studio` does."""
    uvicorn = pytest.importorskip("uvicorn")
    from edge_app.studio.app import build_app

    studios = []

    def start(task):
        studio = _studio(tmp_path / task, task=task)
        studios.append(studio)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(build_app(studio), host="127.0.0.1", port=port,
                                               log_level="warning", timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        _wait(lambda: server.started, "the server")
        studios.append((server, thread))
        return studio, f"http://127.0.0.1:{port}/"

    yield start
    for item in studios:
        if isinstance(item, tuple):
            item[0].should_exit = True
            item[1].join(5)
        else:
            item.close()


@pytest.mark.slow
def test_the_course_loop_in_a_browser(served, browser, tmp_path):
    studio, url = served("thumbs")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_test_id("label-thumbs_up").click()
    page.get_by_test_id("capture").click()
    page.wait_for_function("document.querySelector('[data-testid=count-thumbs_up]').textContent === '1'")
    data = tmp_path / "thumbs/data"
    assert len(_files(data, "thumbs_up")) == 1
    for label in ("thumbs_up", "thumbs_down"):   # hold to burst
        page.get_by_test_id("label-" + label).click()
        page.get_by_test_id("burst").hover()
        page.mouse.down()
        page.wait_for_timeout(2500)
        page.mouse.up()
    page.wait_for_function("+document.querySelector('[data-testid=count-thumbs_down]').textContent >= 8")
    before = len(_files(data, "thumbs_down"))
    page.get_by_test_id("sample").first.get_by_test_id("delete").click()   # undo a bad capture
    _wait(lambda: len(_files(data, "thumbs_down")) == before - 1, "the deletion")
    page.get_by_test_id("train").click()
    page.wait_for_selector("[data-testid=train-status][data-state=done]", timeout=300_000)
    assert "done in" in page.get_by_test_id("train-status").inner_text()
    page.get_by_test_id("mode-infer").click()
    page.wait_for_function("/thumbs_(up|down) \\d+%|no hand/.test("
                           "document.querySelector('[data-testid=prediction]').textContent)", timeout=60_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "studio-thumbs.png"), full_page=True)
    assert (ARTIFACTS / "studio-thumbs.png").stat().st_size > 10_000
    page.get_by_test_id("mode-capture").click()
    page.wait_for_selector("[data-testid=capture]", state="visible")


@pytest.mark.slow
def test_keypoints_are_labelled_by_clicking_the_image(served, browser, tmp_path):
    studio, url = served("face")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url, wait_until="domcontentloaded")
    stream = page.get_by_test_id("stream")
    page.wait_for_function("document.querySelector('[data-testid=stream]').naturalWidth > 0")
    box = stream.bounding_box()
    for name, (x, y) in (("nose", (0.5, 0.55)), ("left_eye", (0.6, 0.4)), ("right_eye", (0.4, 0.4))):
        page.get_by_test_id("label-" + name).click()
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.wait_for_timeout(200)
    page.wait_for_function("document.querySelector('[data-testid=count-nose]').textContent === '1'")
    rows = (tmp_path / "face/data/labels.csv").read_text().splitlines()
    values = [float(v) for v in rows[1].split(",")[1:]]
    assert values == pytest.approx([0.5, 0.55, 0.6, 0.4, 0.4, 0.4], abs=0.01)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "studio-face.png"))


@pytest.mark.slow   # starts a training run (about 3 s)
def test_a_failed_training_shows_its_reason(client, tmp_path):
    pytest.importorskip("torch")
    client.post("/api/capture", json={"label": "thumbs_up"})
    _wait(lambda: client.studio.session.writer.pending == 0 and _files(tmp_path / "data", "thumbs_up"), "the file")
    assert client.post("/api/train", json={"mode": "fast"}).status_code == 200
    assert client.post("/api/train", json={}).json()["error"].startswith("training is already running")
    status = _wait(lambda: (lambda t: t if t["state"] != "running" else None)(
        client.get("/api/state").json()["train"]), "training to end", timeout=120)
    assert status["state"] == "failed" and "thumbs_down" in status["error"], status


def test_listening_beyond_localhost_needs_a_token(monkeypatch, tmp_path, capsys, caplog):
    uvicorn = pytest.importorskip("uvicorn")
    from edge_app.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.update(app=self.config.app))
    monkeypatch.chdir(tmp_path)
    assert main(["studio", "--task", "thumbs", "--source", "sim://thumbs", "--host", "0.0.0.0",
                 "--port", "8099"]) == 0
    out = capsys.readouterr().out
    assert "http://localhost:8099/?token=" in out
    assert seen["app"].token and seen["app"].token in out
    assert "anyone on this network" in caplog.text
    assert (tmp_path / "data/thumbs/dataset.yaml").is_file(), "default dataset folder data/TASK"


def test_an_unplugged_camera_is_one_line_and_nothing_is_left_running(tmp_path, capsys, monkeypatch):
    pytest.importorskip("uvicorn")
    from edge_app.cli import main

    monkeypatch.chdir(tmp_path)
    before = threading.active_count()
    assert main(["studio", "--task", "thumbs", "--source", str(tmp_path / "no-such-video.mp4")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no-such-video.mp4" in err[0]
    _wait(lambda: threading.active_count() <= before, "the writer thread to stop")


def test_no_shot_before_the_camera_check_answers(client, tmp_path):
    """A shot taken before the check turns the picture upright would be stored turned while
    every later one is upright: capture and bursts wait for its answer, saying why."""
    class _Checking:
        def status(self):
            return {"state": "checking", "rotation": None}

        def offer(self, image, truth=None):
            pass

        def close(self):
            pass

    real, client.studio.watch = client.studio.watch, _Checking()
    try:
        for path, body in (("/api/capture", {"label": "thumbs_up"}),
                           ("/api/burst", {"label": "thumbs_up", "on": True})):
            error = client.post(path, json=body).json().get("error", "")
            assert "camera check is still looking" in error, path
        assert not _files(tmp_path / "data", "thumbs_up"), "nothing saved"
    finally:
        client.studio.watch = real
    assert client.post("/api/capture", json={"label": "thumbs_up"}).json() == {"ok": True}
