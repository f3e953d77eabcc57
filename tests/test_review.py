"""The studio's Review view: collected frames listed most uncertain first, confirmed or
corrected into the dataset with their subject (one in five held back), skipped, deleted to
.deleted/, names checked, retraining refused clearly without torch; without a camera
(--source none); and the view in a real browser (keys, clicks, dragging a point)."""
from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

BASE = "http://127.0.0.1:8080"


class _Info:
    def __init__(self, task):
        self.task, self.bundle = task, None

    def describe_input(self):
        return "frame"


def collect_sim(root: Path, task_name: str, n: int, seed: int = 0) -> str:
    """``n`` simulated frames kept as the loop keeps them, with made-up model answers of
    varying certainty; returns the model folder's name."""
    from edge_app.model.results import ClassResult, PointsResult
    from edge_app.runtime.collect import Collector, CollectPolicy
    from edge_app.sources.sim import SimSource
    from edge_app.tasks.spec import load_task

    task = load_task(task_name)
    src = SimSource("sim://" + task_name, task, 128, 96, seed=seed)
    src.open()
    c = Collector(root, CollectPolicy(min_interval=0.0, drift_rate=1.0, min_confidence=1.1))
    folder = c.add_model("model-a", _Info(task))
    rng = np.random.default_rng(seed)
    for _ in range(n):
        f = src.read()
        if task.points:
            pts = np.array([f.truth["points"][p] for p in task.points]) + rng.normal(0, 0.05, (len(task.points), 2))
            result = PointsResult(task.points, pts.clip(0, 1))
        else:
            a = float(rng.uniform(0.5, 1.0))
            result = ClassResult(task.labels, np.array([a, 1 - a], np.float32))
        c.observe(f, ["model-a"], [result], [f.truth["subject"]])
        time.sleep(0.002)   # distinct file names
    c.close()
    return folder


def _studio(tmp_path, task="thumbs", n=12):
    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    collect_sim(tmp_path / "collected", task, n)
    return Studio(load_task(task), "none", tmp_path / "data", tmp_path / "runs",
                  collected=tmp_path / "collected", current=tmp_path / "runs/current").start()


@pytest.fixture
def client(tmp_path):
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    studio = _studio(tmp_path)
    with TestClient(build_app(studio), base_url=BASE) as c:
        c.studio = studio
        yield c
    studio.close()


def test_without_a_camera_only_review_works(client):
    state = client.get("/api/state").json()
    assert state["camera"] is False and state["review"] is True
    r = client.post("/api/capture", json={"label": "thumbs_up"})
    assert r.status_code == 400 and "no camera" in r.json()["error"]
    assert "no camera" in client.post("/api/mode", json={"mode": "infer"}).json()["error"]


def test_frames_are_listed_most_uncertain_first(client):
    items = client.get("/api/review").json()["items"]
    assert len(items) == 12
    u = [i["uncertainty"] for i in items]
    assert u == sorted(u, reverse=True) and u[0] > u[-1]
    image = client.get("/api/review/image/{}/{}".format(items[0]["model"], items[0]["file"]))
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"


def test_confirm_correct_skip_and_delete(client, tmp_path):
    data, col = tmp_path / "data", tmp_path / "collected/model-a"
    items = client.get("/api/review").json()["items"]
    where = []
    for item in items[:8]:
        truth = _truth(col, item["file"])
        r = client.post("/api/review/confirm", json={"model": item["model"], "file": item["file"],
                                                     "label": truth["label"]})
        assert r.status_code == 200, r.text
        where.append(r.json()["to"])
    saved = sorted(p.name for p in data.glob("thumbs_*/*.jpg"))
    assert len(saved) == where.count("dataset") and where.count("held back") >= 1
    subjects = [json.loads(x) for x in (data / "subjects.jsonl").read_text().splitlines()]
    assert len(subjects) == len(saved) and all(s["box"] for s in subjects), "saved with the subject"
    held = tmp_path / "collected/.holdout-thumbs"
    assert len((held / "index.jsonl").read_text().splitlines()) == where.count("held back")
    left = client.get("/api/review").json()
    assert len(left["items"]) == 4 and left["counts"]["confirmed"] == 8
    skip, gone = left["items"][0], left["items"][1]
    assert client.post("/api/review/skip", json={"model": skip["model"], "file": skip["file"]}).status_code == 200
    after = client.get("/api/review").json()["items"]
    assert after[-1]["file"] == skip["file"] and after[-1]["skipped"], "skipped ones go last"
    assert client.post("/api/review/delete", json={"model": gone["model"], "file": gone["file"]}).status_code == 200
    assert (col / ".deleted" / gone["file"]).is_file() and not (col / gone["file"]).exists()
    assert len(client.get("/api/review").json()["items"]) == 3


def test_the_first_of_each_class_then_one_in_five_is_held_back():
    from edge_app.studio.review import held_back

    held, picks = 0, []
    for confirmed in range(11):
        picks.append(held_back(confirmed, held))
        held += picks[-1]
    assert [i for i, p in enumerate(picks) if p] == [0, 5, 10]


def _truth(folder, name):
    for line in (folder / "collected.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["file"] == name:
            return row["truth"]
    raise AssertionError(name)


@pytest.mark.parametrize("model,name", [("..", "x.jpg"), ("model-a", "../model.json"), ("model-a", "nope.jpg"),
                                        ("model-a", "collected.jsonl"), ("other", "x.jpg")])
def test_names_from_the_page_cannot_leave_the_folder(client, model, name):
    r = client.post("/api/review/confirm", json={"model": model, "file": name, "label": "thumbs_up"})
    assert r.status_code in (400, 404)
    assert client.get(f"/api/review/image/{model}/{name}").status_code in (400, 404, 405)


def test_bad_answers_and_other_origins_are_refused(client, tmp_path):
    item = client.get("/api/review").json()["items"][0]
    ref = {"model": item["model"], "file": item["file"]}
    r = client.post("/api/review/confirm", json=dict(ref, label="thumbs_sideways"))
    assert r.status_code == 400 and "not a class" in r.json()["error"]
    evil = client.post("/api/review/confirm", json=dict(ref, label="thumbs_up"),
                       headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert client.post("/api/review/fly", json=ref).status_code == 400
    assert not (tmp_path / "data/thumbs_up").is_dir() or not any((tmp_path / "data/thumbs_up").iterdir())


def test_retrain_says_where_torch_is_missing(client, monkeypatch):
    import edge_app.studio.review as review

    monkeypatch.setattr(review, "torch_available", lambda: False)
    item = client.get("/api/review").json()["items"][0]
    client.post("/api/review/confirm", json={"model": item["model"], "file": item["file"], "label": "thumbs_up"})
    assert client.get("/api/review").json()["can_train"] is False
    r = client.post("/api/review/retrain", json={})
    assert r.status_code == 400 and "needs torch" in r.json()["error"] and "copy the dataset" in r.json()["error"]
    assert "nothing to roll back" in client.post("/api/review/rollback", json={}).json()["error"]


def test_points_are_confirmed_where_they_were_dragged(tmp_path):
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    studio = _studio(tmp_path, task="face", n=6)
    try:
        c = TestClient(build_app(studio), base_url=BASE)
        item = c.get("/api/review").json()["items"][0]
        ref = {"model": item["model"], "file": item["file"]}
        bad = c.post("/api/review/confirm", json=dict(ref, points={"nose": [1.5, 0.2]}))
        assert bad.status_code == 400 and "within 0..1" in bad.json()["error"]
        pts = {"nose": [0.5, 0.6], "left_eye": [0.6, 0.4], "right_eye": [0.4, 0.4]}
        where = c.post("/api/review/confirm", json=dict(ref, points=pts)).json()["to"]
        root = tmp_path / ("data" if where == "dataset" else "collected/.holdout-face")
        rows = (root / "labels.csv").read_text().splitlines()
        assert rows[1].endswith("0.500000,0.600000,0.600000,0.400000,0.400000,0.400000")
    finally:
        studio.close()


# -- the real browser -----------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    uvicorn = pytest.importorskip("uvicorn")
    from edge_app.studio.app import build_app

    started = []

    def start(task, n):
        studio = _studio(tmp_path / task, task=task, n=n)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(build_app(studio), host="127.0.0.1", port=port,
                                               log_level="warning", timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        end = time.monotonic() + 300   # a hang guard, not a bound
        while not server.started and time.monotonic() < end:
            time.sleep(0.05)
        started.append((studio, server, thread))
        return studio, f"http://127.0.0.1:{port}/"

    yield start
    for studio, server, thread in started:
        server.should_exit = True
        thread.join(5)
        studio.close()


def _dataset_files(root):
    return sorted(p.name for p in root.glob("*/*.jpg") if not p.parent.name.startswith("."))


@pytest.mark.slow
def test_review_view_in_a_browser(served, browser, tmp_path):
    import os

    studio, url = served("thumbs", 6)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid=review-view]:not([hidden])")   # no camera: opens on Review
    assert page.get_by_test_id("mode-capture").is_hidden()
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 6")
    first = page.get_by_test_id("review-image").get_attribute("src")
    page.keyboard.press("2")   # confirm as the second class, thumbs_down
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 5")
    assert page.get_by_test_id("review-image").get_attribute("src") != first, "on to the next"
    page.get_by_test_id("review-label-thumbs_up").click()   # a click corrects
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 4")
    page.keyboard.press("Enter")   # the model's guess is right
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 3")
    page.keyboard.press("s")
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item].skipped').length === 1")
    page.get_by_test_id("review-delete").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 2")
    page.wait_for_function("/3 confirmed/.test(document.querySelector('[data-testid=review-counts]').textContent)")
    data = tmp_path / "thumbs/data"
    held = tmp_path / "thumbs/collected/.holdout-thumbs"
    assert len(_dataset_files(data)) + len(_dataset_files(held)) == 3
    assert len(list((tmp_path / "thumbs/collected/model-a/.deleted").glob("*.jpg"))) == 1
    artifacts = Path(os.environ.get("EDGE_APP_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "studio-review.png"), full_page=True)

    face, url = served("face", 2)
    page.goto(url, wait_until="domcontentloaded")
    dot = page.get_by_test_id("review-point-nose")
    dot.wait_for()
    page.wait_for_function("document.getElementById('review-image').complete && "
                           "document.getElementById('review-image').naturalWidth > 0")
    frame = page.locator("#review-frame").bounding_box()
    box = dot.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(frame["x"] + 0.25 * frame["width"], frame["y"] + 0.75 * frame["height"], steps=5)
    page.mouse.up()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('[data-testid=review-item]').length === 1")
    rows = []
    for root in (tmp_path / "face/data", tmp_path / "face/collected/.holdout-face"):
        if (root / "labels.csv").is_file():
            rows += (root / "labels.csv").read_text().splitlines()[1:]
    nose = [float(v) for v in rows[0].split(",")[1:3]]   # image, nose x y, left_eye x y, right_eye x y
    assert abs(nose[0] - 0.25) < 0.03 and abs(nose[1] - 0.75) < 0.03, nose


def test_a_turned_camera_is_collected_raw_and_reviewed_upright(tmp_path):
    """Rotation hook: the JPEG is the frame as the camera gave it (raw), the review turns it
    as the loop did before it joins the dataset."""
    import cv2

    from edge_app.dataset.writer import DatasetWriter
    from edge_app.model.results import ClassResult
    from edge_app.runtime.collect import Collector, CollectPolicy
    from edge_app.studio.review import Review
    from edge_app.tasks.spec import load_task

    class Turned:
        raw = np.zeros((40, 80, 3), np.uint8)   # landscape as the camera sends it
        image = np.zeros((80, 40, 3), np.uint8)  # portrait after ?rotate=90
        rotation, raw_turn, id, truth = 90, 90, 1, None

    Turned.raw[:, :10] = 255   # a bright left edge: the top edge once turned clockwise
    task = load_task("thumbs")
    c = Collector(tmp_path / "col", CollectPolicy(min_interval=0.0, drift_rate=1.0))
    c.add_model("m", _Info(task))
    c.observe(Turned(), ["m"], [ClassResult(task.labels, np.array([0.5, 0.5], np.float32))], [None])
    c.close()
    row = json.loads((tmp_path / "col/m/collected.jsonl").read_text())
    assert row["rotate"] == 90 and cv2.imread(str(tmp_path / "col/m" / row["file"])).shape[:2] == (40, 80)
    review = Review(tmp_path / "col", task, DatasetWriter(tmp_path / "data", task), job=None,
                    holdout=tmp_path / "held")
    shown = cv2.imdecode(np.frombuffer(review.image("m", row["file"]), np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (80, 40), "the page shows the frame as the model saw it"
    review.confirm("m", row["file"], "thumbs_up")
    saved = list((tmp_path / "data/thumbs_up").glob("*.jpg")) + list((tmp_path / "held/thumbs_up").glob("*.jpg"))
    image = cv2.imread(str(saved[0]))
    assert image.shape[:2] == (80, 40) and image[:8].mean() > 200 > image[-8:].mean() + 100


def test_a_turned_frame_joins_a_dataset_that_declares_the_turn_as_its_others(tmp_path):
    """A dataset with rotate: 90 turns its images when read: the confirmed frame is stored
    raw, like the others, so readers see it upright once, not turned twice; a second answer
    for the same frame is refused."""
    import cv2

    from edge_app.dataset.meta import meta_for, write_meta
    from edge_app.dataset.verify import read_image
    from edge_app.dataset.writer import DatasetWriter
    from edge_app.errors import UserError
    from edge_app.model.results import ClassResult
    from edge_app.runtime.collect import Collector, CollectPolicy
    from edge_app.studio.review import Review
    from edge_app.tasks.spec import load_task

    class Turned:
        raw = np.zeros((40, 80, 3), np.uint8)
        image = np.zeros((80, 40, 3), np.uint8)
        rotation, raw_turn, id, truth = 90, 90, 1, None

    Turned.raw[:, :10] = 255   # the top edge once turned clockwise
    task = load_task("thumbs")
    (tmp_path / "data").mkdir()
    write_meta(tmp_path / "data", dict(meta_for(task), rotate=90))
    c = Collector(tmp_path / "col", CollectPolicy(min_interval=0.0, drift_rate=1.0))
    c.add_model("m", _Info(task))
    for i in range(2):
        Turned.id = i
        c.observe(Turned(), ["m"], [ClassResult(task.labels, np.array([0.5, 0.5], np.float32))], [None])
    c.close()
    rows = [json.loads(line) for line in (tmp_path / "col/m/collected.jsonl").read_text().splitlines()]
    review = Review(tmp_path / "col", task, DatasetWriter(tmp_path / "data", task), job=None,
                    holdout=tmp_path / "held")
    where = [review.confirm("m", r["file"], "thumbs_up") for r in rows]
    assert "dataset" in where, where
    with pytest.raises(UserError, match="already reviewed"):
        review.confirm("m", rows[0]["file"], "thumbs_down")
    stored = list((tmp_path / "data/thumbs_up").glob("*.jpg"))
    assert len(stored) == 1 and cv2.imread(str(stored[0])).shape[:2] == (40, 80), "stored raw"
    upright, _ = read_image(stored[0])
    assert upright.shape[:2] == (80, 40) and upright[:8].mean() > 200 > upright[-8:].mean() + 100
