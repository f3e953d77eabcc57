"""Links out of the dataset and the collected folder (issue 34, finding 2): a file whose real
path lies elsewhere (``ln -s /etc/passwd DATA/thumbs_up/evil.jpg``) is neither served by the
studio (samples, the Review view) nor copied by confirming it; ``edge-app data info`` lists it
with the fix; a keypoints CSV row naming an absolute path, a ``..`` or a link out is skipped.
Links that stay inside still work."""
from __future__ import annotations

import json
import logging

import pytest

from helpers import write_class_tree, write_image

BASE = "http://127.0.0.1:8080"
SECRET = b"root:x:0:0:the secret:/root:/bin/bash\n"


def _secret(tmp_path):
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SECRET)
    return path


def _client(studio):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    return TestClient(build_app(studio), base_url=BASE)


def _studio(tmp_path, **kw):
    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    return Studio(load_task("thumbs"), "none", tmp_path / "data", tmp_path / "runs", **kw).start()


def test_the_studio_does_not_serve_a_sample_linked_out_of_the_dataset(tmp_path, caplog):
    studio = _studio(tmp_path)
    data = write_class_tree(tmp_path / "data", {"thumbs_up": 1, "thumbs_down": 1})
    (data / "thumbs_up" / "evil.jpg").symlink_to(_secret(tmp_path))
    inside = data / "thumbs_down" / "thumbs_down_0.jpg"
    (data / "thumbs_up" / "twin.jpg").symlink_to(inside)   # a link that stays inside: served
    try:
        with caplog.at_level(logging.WARNING), _client(studio) as c:
            r = c.get("/api/samples/thumbs_up/evil.jpg")
            assert r.status_code == 403, r.text
            assert SECRET not in r.content and "outside the dataset" in r.json()["error"]
            assert "remove the link or copy the file in" in r.json()["error"]
            assert "\n" not in r.json()["error"]
            assert c.get("/api/samples/thumbs_up/thumbs_up_0.jpg").status_code == 200
            assert c.get("/api/samples/thumbs_up/twin.jpg").content == inside.read_bytes()
            recent = [s["name"] for s in c.get("/api/state").json()["recent"]]
            assert "evil.jpg" not in recent and "twin.jpg" in recent
        assert any("evil.jpg" in m and "outside the dataset" in m for m in caplog.messages)
    finally:
        studio.close()


def _linked_frame(tmp_path, target):
    """A collected folder of 6 frames where the first one is replaced by a link to ``target``."""
    from test_review import collect_sim

    folder = tmp_path / "collected" / collect_sim(tmp_path / "collected", "thumbs", 6)
    victim = sorted(folder.glob("*.jpg"))[0]
    victim.unlink()
    victim.symlink_to(target)
    return victim


def test_the_review_neither_shows_nor_copies_a_frame_linked_out(tmp_path, caplog):
    # A real JPEG outside: only the link check can stop it (a text file would fail to decode).
    outside = write_image(tmp_path / "outside" / "private.jpg", 80, 60)
    victim = _linked_frame(tmp_path, outside)
    studio = _studio(tmp_path, collected=tmp_path / "collected", current=tmp_path / "runs" / "current")
    try:
        with caplog.at_level(logging.WARNING), _client(studio) as c:
            items = c.get("/api/review").json()["items"]
            assert len(items) == 5 and victim.name not in [i["file"] for i in items]
            r = c.get(f"/api/review/image/model-a/{victim.name}")
            assert r.status_code == 403 and "outside the collected folder" in r.json()["error"], r.text
            for label in ("thumbs_up", "thumbs_down"):
                r = c.post("/api/review/confirm", json={"model": "model-a", "file": victim.name, "label": label})
                assert r.status_code == 403, r.text
            item = items[0]   # the others still work
            assert c.post("/api/review/confirm", json={"model": item["model"], "file": item["file"],
                                                       "label": "thumbs_up"}).status_code == 200
        assert any(victim.name in m and "outside" in m for m in caplog.messages)
    finally:
        studio.close()
    secret = outside.read_bytes()
    copies = [p for p in tmp_path.rglob("*.jpg") if not p.is_symlink() and p != outside]
    assert copies and all(p.read_bytes() != secret for p in copies), "the linked file was copied"


def test_data_info_lists_links_out_with_the_fix(tmp_path, capsys):
    from edge_app.cli import main

    data = write_class_tree(tmp_path / "data", {"thumbs_up": 2, "thumbs_down": 2})
    (data / "thumbs_up" / "evil.jpg").symlink_to(_secret(tmp_path))
    elsewhere = write_class_tree(tmp_path / "elsewhere", {"thumbs_sideways": 2})
    (data / "thumbs_sideways").symlink_to(elsewhere / "thumbs_sideways", target_is_directory=True)
    (data / "thumbs_up" / "twin.jpg").symlink_to(data / "thumbs_down" / "thumbs_down_0.jpg")
    report = tmp_path / "info.json"
    assert main(["data", "info", str(data), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    problems = json.loads(report.read_text())["problems"]
    linked = [p for p in problems if "outside the dataset" in p]
    assert len(linked) == 2, problems
    assert all("remove the link or copy the file in" in p for p in linked)
    assert any("evil.jpg" in p and "passwd" in p for p in linked)
    assert any(p.startswith(str(data / "thumbs_sideways") + ":") for p in linked), "the folder, once"
    assert not any("twin.jpg" in p for p in problems), "a link inside is fine"
    assert "evil.jpg: a link to" in out


def test_a_keypoints_csv_cannot_name_files_outside_its_folder(tmp_path):
    from edge_app.dataset.formats import read_dataset

    root = tmp_path / "ds"
    write_image(root / "images" / "a.jpg")
    outside = write_image(tmp_path / "elsewhere" / "b.jpg")
    (root / "images" / "link.jpg").symlink_to(outside)
    write_image(root / "images" / "sub" / "c.jpg")
    rows = ["image,nose_x,nose_y", "images/a.jpg,10,12", f"{outside},3,4", "../elsewhere/b.jpg,5,6",
            "images/link.jpg,7,8", "images/sub/../sub/c.jpg,9,9", f"{root / 'images' / 'a.jpg'},1,1"]
    (root / "points.csv").write_text("\n".join(rows) + "\n")
    ds = read_dataset(root, "csv")
    assert sorted(s.path.name for s in ds.samples) == ["a.jpg", "c.jpg"]
    outside_rows = [p for p in ds.problems if "outside the dataset" in p.message]
    assert [p.path.rsplit(":", 1)[1] for p in outside_rows] == ["3", "4", "5", "7"], ds.problems
    assert all("row skipped" in p.message for p in outside_rows)


def test_the_fast_check_agrees_with_the_real_path(tmp_path):
    from edge_app.dataset.links import Inside, real_inside

    root = tmp_path / "root"
    a = write_image(root / "a" / "x.jpg")
    outside = write_image(tmp_path / "elsewhere" / "y.jpg")
    (root / "a" / "out.jpg").symlink_to(outside)
    (root / "a" / "in.jpg").symlink_to(a)
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "inner").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "loop.jpg").symlink_to(root / "a" / "loop.jpg")
    names = ["a/x.jpg", "a/out.jpg", "a/in.jpg", "linked/y.jpg", "inner/x.jpg", "inner/out.jpg",
             "a/../a/x.jpg", "a/../../elsewhere/y.jpg", "linked/../a/x.jpg", "a/missing.jpg", "a/loop.jpg",
             str(outside), str(a), "a", ".", ""]
    inside = Inside(root)
    for name in names:
        assert inside(root / name) == real_inside(root / name, root), name
    assert inside(root / "a/out.jpg") is None and inside(root / "linked/y.jpg") is None
    assert inside(root / "inner/x.jpg") == a.resolve()
