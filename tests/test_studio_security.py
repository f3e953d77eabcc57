"""The studio and ``run --serve`` against other web pages and careless clients: cross-site
"simple" requests, foreign and same-host-other-port origins, DNS rebinding (a Host this
machine does not answer to), bodies over the limit (read no further than the limit), deep or
huge JSON, long labels, the CSRF value of the cookie case, deleting while training runs, and a
Hypothesis fuzz over the JSON API that must never produce a 500."""
from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import FAST_TRAIN, HANG_GUARD, checked, chromium_path

pytest.importorskip("starlette")
pytest.importorskip("httpx")

BASE = "http://127.0.0.1:8080"
SAME = {"Origin": BASE}
AS_JSON = {"Content-Type": "application/json"}
TRAIN_ARGS = [a for a in FAST_TRAIN if a != "--no-progress"]
ROUTES = ["/api/select", "/api/capture", "/api/burst", "/api/point", "/api/points", "/api/train", "/api/mode"]


def _studio(tmp_path, task="thumbs"):
    from edge_app.studio.core import Studio
    from edge_app.tasks.spec import load_task

    source = f"sim://{task}?width=128&height=96&fps=30"
    return checked(Studio(load_task(task), source, tmp_path / "data", tmp_path / "runs", TRAIN_ARGS).start())


def _wait(check, what, timeout=HANG_GUARD):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _client(studio, token=None, **kw):
    from starlette.testclient import TestClient

    from edge_app.studio.app import build_app

    return TestClient(build_app(studio, token=token, **kw), base_url=BASE)


@pytest.fixture
def local(tmp_path):
    """The studio as on 127.0.0.1: no token."""
    studio = _studio(tmp_path)
    with _client(studio) as c:
        c.studio = studio
        _wait(lambda: c.get("/frame.jpg").content, "a first frame")
        yield c
    studio.close()


@pytest.fixture
def tokened(tmp_path):
    """The studio as on 0.0.0.0: a token, which the browser keeps in its cookie."""
    studio = _studio(tmp_path)
    with _client(studio, token="secret", host="0.0.0.0") as c:
        c.studio = studio
        _wait(lambda: c.get("/frame.jpg", headers={"X-Token": "secret"}).content, "a first frame")
        yield c
    studio.close()


def _saved(tmp_path):
    return sorted((tmp_path / "data").glob("**/*.jpg"))


def _csrf(client, url="/"):
    page = client.get(url).text
    start = page.index('name="studio-csrf" content="') + len('name="studio-csrf" content="')
    return page[start:page.index('"', start)]


# -- other web pages --------------------------------------------------------------------------

def test_a_cross_site_simple_post_is_refused_and_saves_nothing(local, tmp_path):
    body = json.dumps({"label": "thumbs_up"})
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert local.post("/api/capture", content=body, headers=evil).status_code == 403
    # The same without an Origin (a browser that dropped it): text/plain is not JSON's type.
    assert local.post("/api/capture", content=body, headers={"Content-Type": "text/plain"}).status_code == 415
    assert local.post("/api/capture", content=body, headers=dict(SAME, **{"Content-Type": "text/plain"})
                      ).status_code == 415
    time.sleep(0.3)
    assert _saved(tmp_path) == []
    assert local.post("/api/capture", json={"label": "thumbs_up"}, headers=SAME).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "https://127.0.0.1:8080"},
    {"Origin": "http://127.0.0.1:8080.evil.example"}, {"Origin": "http://localhost:8080"},
    {"Referer": "http://evil.example/page"}, {"Referer": "http://127.0.0.1:3000/"}, {"Referer": "http://[::1"},
    {"Origin": "http://[::1"},
])
def test_a_foreign_origin_is_refused(local, tmp_path, headers):
    for method, path in (("POST", "/api/capture"), ("POST", "/api/mode"), ("DELETE", "/api/samples/thumbs_up/x.jpg")):
        r = local.request(method, path, json={"label": "thumbs_up", "mode": "capture"}, headers=headers)
        assert r.status_code == 403 and "another web page" in r.json()["error"], (method, path, r.text)
    assert _saved(tmp_path) == []


def test_the_own_origin_and_a_script_without_one_are_accepted(local):
    assert local.post("/api/select", json={"label": "thumbs_up"}, headers=SAME).status_code == 200
    assert local.post("/api/select", json={"label": "thumbs_up"},
                      headers={"Referer": BASE + "/?x=1"}).status_code == 200
    assert local.post("/api/select", json={"label": "thumbs_up"}).status_code == 200, "curl sends no Origin"
    refused = local.post("/api/select", json={"label": "thumbs_up"}, headers={"Cookie": "a=b"})
    assert refused.status_code == 403, "a browser request (it has cookies) must say where it comes from"


def test_another_port_of_the_same_host_is_refused_with_a_token(tokened, tmp_path):
    from starlette.testclient import TestClient

    browser = TestClient(tokened.app, base_url=BASE)
    assert browser.get("/?token=secret").status_code == 200   # the cookie is set
    csrf = _csrf(browser)
    other = {"Origin": "http://127.0.0.1:3000", "X-CSRF": csrf}
    r = browser.post("/api/capture", json={"label": "thumbs_up"}, headers=other)
    assert r.status_code == 403 and "another web page" in r.json()["error"]
    r = browser.post("/api/capture", json={"label": "thumbs_up"}, headers=dict(other, **{"X-Token": "secret"}))
    assert r.status_code == 403, "even with the token: the Origin is another page's"
    time.sleep(0.3)
    assert _saved(tmp_path) == []


def test_the_cookie_alone_needs_the_pages_csrf_value(tokened):
    from starlette.testclient import TestClient

    browser = TestClient(tokened.app, base_url=BASE)
    browser.get("/?token=secret")
    r = browser.post("/api/select", json={"label": "thumbs_up"}, headers=SAME)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    forged = browser.post("/api/select", json={"label": "thumbs_up"}, headers=dict(SAME, **{"X-CSRF": "abc.def"}))
    assert forged.status_code == 403
    csrf = _csrf(browser)
    assert browser.post("/api/select", json={"label": "thumbs_up"},
                        headers=dict(SAME, **{"X-CSRF": csrf})).status_code == 200
    assert _csrf(browser) != csrf, "one value per page load"
    assert browser.get("/api/state").status_code == 200, "reading needs no CSRF value"
    # A script with the token in a header (no cookie sent by a browser on its own) needs none.
    script = TestClient(tokened.app, base_url=BASE)
    assert script.post("/api/select", json={"label": "thumbs_up"}, headers={"X-Token": "secret"}).status_code == 200
    assert script.post("/api/select", json={"label": "thumbs_up"}).status_code == 401


def test_responses_stay_out_of_other_pages(local):
    r = local.get("/")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


# -- DNS rebinding ----------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example:8080", "evil.example", "127.0.0.1.evil.example:8080",
                                  "localhost.evil.example", "evil@127.0.0.1:8080", ""])
def test_a_rebinding_host_gets_nothing(local, tmp_path, host):
    headers = {"Host": host}
    for path in ("/frame.jpg", "/api/state", "/", "/static/app.js"):
        r = local.get(path, headers=headers)
        assert r.status_code == 421 and b"\xff\xd8" not in r.content, path
        assert "camera" not in r.text and "thumbs_up" not in r.text
    r = local.post("/api/capture", json={"label": "thumbs_up"}, headers=dict(headers, Origin="http://" + host))
    assert r.status_code == 421
    time.sleep(0.3)
    assert _saved(tmp_path) == []


def test_a_rebinding_host_gets_no_stream(local):
    with local.stream("GET", "/stream", headers={"Host": "evil.example:8080"}) as r:
        assert r.status_code == 421 and b"\xff\xd8" not in r.read()


@pytest.mark.parametrize("host", ["localhost:8080", "LOCALHOST.:8080", "127.0.0.1:8080", "[::1]:8080"])
def test_the_localhost_names_are_answered(local, host):
    assert local.get("/api/state", headers={"Host": host}).status_code == 200


def test_allow_host_adds_a_dns_name(tmp_path):
    studio = _studio(tmp_path)
    try:
        c = _client(studio, host="0.0.0.0", token="t", allow_hosts=["studio.lab.example"])
        ok = c.get("/api/state", headers={"Host": "studio.lab.example:8080", "X-Token": "t"})
        assert ok.status_code == 200
        assert c.get("/api/state", headers={"Host": "other.lab.example", "X-Token": "t"}).status_code == 421
    finally:
        studio.close()


def test_the_host_allow_list():
    from edge_app.runtime.serve import HostAllowList, interface_addresses, machine_names

    loop = HostAllowList("127.0.0.1")
    for ok in ("localhost", "localhost:1", "127.0.0.1:8080", "[::1]:80", "Localhost."):
        assert loop.allows(ok), ok
    for bad in ("evil.example", "", None, "127.0.0.2", "localhost:notaport", "[::1", "a b", "x" * 400):
        assert not loop.allows(bad), bad
    assert not loop.allows(sorted(machine_names())[0]), "loopback only: not the machine's name"
    everywhere = HostAllowList("0.0.0.0", ["jetson.lab"])
    for ok in list(interface_addresses()) + list(machine_names()) + ["localhost", "jetson.lab:8080"]:
        assert everywhere.allows(f"[{ok}]" if ok.count(":") > 1 else ok), ok
    assert not everywhere.allows("evil.example:8080")
    assert not everywhere.allows("203.0.113.7"), "an address this machine does not have"
    one = HostAllowList("192.0.2.5")
    assert one.allows("192.0.2.5:8080") and not one.allows("localhost")


def test_same_origin_rules():
    from edge_app.runtime.serve import same_origin

    assert same_origin("http://127.0.0.1:8080", "http", "127.0.0.1:8080")
    assert same_origin("http://localhost", "http", "localhost:80")
    assert same_origin("http://[::1]:8080", "http", "[::1]:8080")
    assert not same_origin("http://127.0.0.1:3000", "http", "127.0.0.1:8080")
    assert not same_origin("https://127.0.0.1:8080", "http", "127.0.0.1:8080")
    assert not same_origin("null", "http", "127.0.0.1:8080")
    assert not same_origin("http://127.0.0.1:99999", "http", "127.0.0.1:8080")
    assert not same_origin("http://127.0.0.1:8080", "http", None)


# -- bodies -----------------------------------------------------------------------------------

def _asgi(app, method, path, headers, chunks):
    """Call ``app`` directly with a body in ``chunks``; the response status and body, and how
    many chunks it read."""
    read, sent = [0], []

    async def receive():
        if read[0] < len(chunks):
            read[0] += 1
            return {"type": "http.request", "body": chunks[read[0] - 1], "more_body": read[0] < len(chunks)}
        await asyncio.sleep(3600)   # a client that keeps the connection open

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read[0]


def test_a_body_over_the_limit_is_refused_without_reading_it(local, tmp_path):
    chunk = b" " * 65536
    headers = {"Host": "127.0.0.1:8080", "Content-Type": "application/json",
               "Content-Length": str(200 * 1024 * 1024)}
    status, body, read = _asgi(local.app, "POST", "/api/capture", headers, [chunk] * 3200)
    assert status == 413 and read == 0, "refused on its Content-Length, before a byte is read"
    assert "larger than" in json.loads(body)["error"]
    del headers["Content-Length"]   # chunked: counted while read, stopped at the limit
    status, body, read = _asgi(local.app, "POST", "/api/capture", headers, [chunk] * 3200)
    assert status == 413 and read == 1, read
    small = [b"[" + b" " * 1000] * 50   # in small pieces too
    status, _, read = _asgi(local.app, "POST", "/api/capture", headers, small)
    assert status == 413 and read <= 6, read
    assert local.post("/api/capture", content=b" " * 5000, headers=AS_JSON).status_code == 413
    assert _saved(tmp_path) == []


@pytest.mark.parametrize("body", [b"[" * 2000 + b"]" * 2000, b'{"a":' * 600 + b"1" + b"}" * 600,
                                  b'{"name": "nose", "x": ' + b"9" * 3900 + b', "y": 1}',
                                  b'{"name": "nose", "x": 1e999, "y": 1}', b'{"name": "nose", "x": NaN, "y": 1}',
                                  b'{"name": "nose", "x": -Infinity, "y": 1}', b"\xff\xfe{}", b'"\\ud800"'])
def test_deep_or_huge_json_is_a_400(local, body):
    r = local.post("/api/point", content=body, headers=AS_JSON)
    assert r.status_code == 400 and r.json()["error"], r.text


def test_a_long_label_is_refused_fast_and_not_echoed(local, monkeypatch):
    from edge_app.errors import UserError
    from edge_app.studio import core

    compared = []   # difflib is quadratic: "fast" is that no long label ever reaches it
    monkeypatch.setattr(core, "did_you_mean", lambda word, choices: compared.append(len(word)) or "")
    r = local.post("/api/capture", json={"label": "thumbs_" + "u" * 50_000})
    assert r.status_code == 413 and len(r.text) < 300
    label = "thumbs_upp" + "x" * 3000   # under the body limit: checked against the task, cut
    r = local.post("/api/select", json={"label": label})
    assert r.status_code == 400 and len(r.json()["error"]) < 200 and "..." in r.json()["error"]
    with pytest.raises(UserError) as err:   # the studio itself, whatever calls it
        local.studio.select("thumbs_" + "u" * 50_000_000)
    assert len(str(err.value)) < 200
    assert max(compared, default=0) < 100, compared
    monkeypatch.undo()
    assert "did you mean 'thumbs_up'" in local.post("/api/select", json={"label": "thumbs_upp"}).json()["error"]


# -- deleting while training runs ------------------------------------------------------------

def _fake_training(job):
    """A training job that looks like a running one (a child that sleeps)."""
    job.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job.out = job.runs / "fake"
    job.out.mkdir(parents=True, exist_ok=True)
    job.started = time.time()


def test_deleting_while_training_runs_is_refused_with_a_reason(local, tmp_path):
    local.post("/api/capture", json={"label": "thumbs_up"})
    _wait(lambda: local.studio.session.writer.pending == 0 and _saved(tmp_path), "the file")
    name = _saved(tmp_path)[0].name
    _fake_training(local.studio.job)
    try:
        r = local.delete("/api/samples/thumbs_up/" + name)
        assert r.status_code == 409 and "training is using these images" in r.json()["error"]
        assert (tmp_path / "data/thumbs_up" / name).is_file()
    finally:
        local.studio.job.cancel()
    assert local.delete("/api/samples/thumbs_up/" + name).status_code == 200


def test_a_crashed_training_shows_a_readable_reason(tmp_path):
    from edge_app.studio.jobs import TrainingJob
    from edge_app.tasks.spec import load_task

    job = TrainingJob(load_task("thumbs"), tmp_path, tmp_path / "runs", [])
    job.out = tmp_path / "runs/x"
    job.out.mkdir(parents=True)
    (job.out / "train.log").write_text("Traceback (most recent call last):\n  File \"x.py\"\n"
                                       "FileNotFoundError: [Errno 2] No such file or directory: 'a.jpg'\n")
    job.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    job.proc.wait()
    status = job.status()
    assert status["state"] == "failed" and "Errno" not in status["error"] and "Traceback" not in status["error"]
    assert "unexpected error" in status["error"] and "train.log" in status["error"]


def test_the_feature_cache_key_copes_with_a_vanished_file(tmp_path):
    pytest.importorskip("torch")
    from edge_app.dataset.samples import Sample
    from edge_app.tasks.train_config import TrainConfig
    from edge_app.train.fitting import feature_key

    from helpers import write_image

    paths = [write_image(tmp_path / f"a{i}.jpg") for i in range(2)]
    samples = [Sample(path=p, label="a") for p in paths]
    cfg = TrainConfig()
    before = feature_key(cfg, samples, (64, 64), "k")
    paths[1].unlink()
    after = feature_key(cfg, samples, (64, 64), "k")
    assert after != before, "a missing file never matches features computed with it"


@pytest.mark.slow   # a real fast-mode training run (a few seconds)
def test_training_completes_when_a_delete_is_tried_meanwhile(local, tmp_path):
    pytest.importorskip("torch")
    for label in ("thumbs_up", "thumbs_down"):
        local.post("/api/select", json={"label": label})
        for _ in range(6):
            local.post("/api/capture", json={"label": label})
            time.sleep(0.08)
    _wait(lambda: local.studio.session.writer.pending == 0, "the writer")
    victim = sorted((tmp_path / "data/thumbs_up").glob("*.jpg"))[0]
    assert local.post("/api/train", json={"mode": "fast"}).status_code == 200
    r = local.delete("/api/samples/thumbs_up/" + victim.name)
    assert r.status_code == 409 and "training" in r.json()["error"]
    status = _wait(lambda: (lambda t: t if t["state"] != "running" else None)(
        local.get("/api/state").json()["train"]), "training to end", timeout=180)
    assert status["state"] == "done", status
    assert local.delete("/api/samples/thumbs_up/" + victim.name).status_code == 200


# -- fuzz -------------------------------------------------------------------------------------

def _bodies(st):
    """Request bodies for the fuzz: each route's own keys with odd values (most of them), any
    JSON, deep nesting, and bytes that are not JSON."""
    names = st.sampled_from(["thumbs_up", "thumbs_down", "nose", "left_eye", "right_eye", "Nose", "\ud800",
                             "../x", "", "thumbs_upp", "x" * 3000]) | st.text(max_size=40)
    numbers = (st.integers() | st.integers(min_value=10 ** 300, max_value=10 ** 1000) | st.floats()
               | st.floats(min_value=0, max_value=1) | st.booleans() | st.none() | names)
    words = st.sampled_from(["save", "clear", "stop", "fast", "full", "auto", "capture", "infer"]) | names
    keys = st.sampled_from(["label", "name", "x", "y", "on", "action", "mode"]) | st.text(max_size=8)
    anything = st.recursive(numbers | words, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
    shaped = {
        "/api/select": st.fixed_dictionaries({"label": anything}),
        "/api/capture": st.fixed_dictionaries({"label": names | anything}),
        "/api/burst": st.fixed_dictionaries({"label": names, "on": anything}),
        "/api/point": st.fixed_dictionaries({"name": names, "x": numbers, "y": numbers}),
        "/api/points": st.fixed_dictionaries({"action": words | anything}),
        "/api/train": st.fixed_dictionaries({"mode": words | anything}, optional={"action": words}),
        "/api/mode": st.fixed_dictionaries({"mode": words | anything}),
    }

    def encode(value):
        return json.dumps(value).encode("utf-8", "surrogatepass")

    depth = st.integers(1, 2040) | st.sampled_from([1000, 2040])   # Python's recursion limit is 1000
    deep = st.tuples(depth, st.sampled_from(["[]", "{}"])).map(
        lambda t: ("[" * t[0] + "]" * t[0]).encode() if t[1] == "[]"
        else ('{"a":' * min(t[0], 800) + "1" + "}" * min(t[0], 800)).encode())
    route = st.sampled_from(ROUTES)
    return route.flatmap(lambda r: st.tuples(st.just(r), st.one_of(
        shaped[r].map(encode), shaped[r].map(encode), anything.map(encode), deep, st.binary(max_size=64))))


@pytest.mark.parametrize("task", ["thumbs", "face"])
def test_the_json_api_never_answers_500(tmp_path, task):
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from edge_app.studio import jobs

    studio = _studio(tmp_path, task)
    # Never start a real training run: only the mode check of a start.
    studio.job.start = lambda mode=None: jobs.check_mode(mode)
    kinds = st.sampled_from(["application/json", "application/json", "application/json; charset=utf-8",
                             "text/plain", ""])
    try:
        with _client(studio) as client:
            # Bounded and reproducible in CI: a fixed seed, no deadline (a saved shot may wait
            # for the writer), no example database.
            @hyp.settings(max_examples=100, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(hyp.HealthCheck))
            @hyp.given(request=_bodies(st), kind=kinds)
            def check(request, kind):
                route, body = request
                r = client.post(route, content=body, headers={"Content-Type": kind} if kind else {})
                assert r.status_code < 500, (route, body[:200], r.text)
                if r.status_code >= 400:
                    assert isinstance(r.json()["error"], str) and len(r.json()["error"]) < 400

            check()
    finally:
        studio.close()


# -- run --serve ------------------------------------------------------------------------------

def _get(port, path, host, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest(method, path, skip_host=True)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    r = conn.getresponse()
    data = r.read(65536)
    conn.close()
    return r.status, data


@pytest.fixture
def serving():
    from edge_app.runtime.serve import ServeSink

    sink = ServeSink("127.0.0.1:0")
    sink.handle(np.full((48, 64, 3), 120, np.uint8), {"results": [{"label": "thumbs_up"}]})
    yield sink
    sink.finish()


def test_run_serve_refuses_a_rebinding_host(serving):
    port = serving.port
    for path in ("/", "/results", "/stream"):
        status, data = _get(port, path, f"evil.example:{port}")
        assert status == 421 and b"\xff\xd8" not in data and b"thumbs_up" not in data, path
    assert _get(port, "/results", None)[0] == 421, "no Host at all"
    status, data = _get(port, "/results", f"127.0.0.1:{port}")
    assert status == 200 and b"thumbs_up" in data
    status, data = _get(port, "/", f"localhost:{port}")
    assert status == 200 and b"/stream" in data
    assert _get(port, "/results", f"127.0.0.1:{port}", method="POST")[0] == 501, "nothing to change"


def test_run_serve_allow_host(tmp_path):
    from edge_app.runtime.serve import ServeSink

    sink = ServeSink("127.0.0.1:0", allow_hosts=["cam.lab.example"])
    try:
        assert _get(sink.port, "/", f"cam.lab.example:{sink.port}")[0] == 200
        assert _get(sink.port, "/", "evil.example")[0] == 421
    finally:
        sink.finish()


# -- in a real browser ------------------------------------------------------------------------

_chromium = chromium_path


@pytest.fixture
def served(tmp_path):
    """The studio with a token on a free port (uvicorn, as `edge-app studio --host` runs it),
    and another page on another port of the same host."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    uvicorn = pytest.importorskip("uvicorn")
    from edge_app.studio.app import build_app

    studio = _studio(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(studio, token="secret", host="127.0.0.1"), host="127.0.0.1",
                                           port=port, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started, "the server")
    target = f"http://127.0.0.1:{port}"
    attack = (f"<!doctype html><body><form id=f method=POST action='{target}/api/capture' enctype=text/plain>"
              "<input name='{\"label\":\"thumbs_up\",\"x\":\"' value='\"}'></form><script>"
              f"fetch('{target}/api/capture', {{method: 'POST', mode: 'no-cors', credentials: 'include',"
              " headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({label: 'thumbs_up'})})"
              ".then(() => { document.title = 'sent'; }, () => { document.title = 'sent'; });"
              "</script>").encode()

    class Attacker(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(attack)))
            self.end_headers()
            self.wfile.write(attack)

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    yield studio, target, f"http://127.0.0.1:{evil.server_address[1]}/", port
    evil.shutdown()
    evil.server_close()
    server.should_exit = True
    thread.join(5)
    studio.close()


@pytest.mark.slow
def test_in_a_browser_other_pages_and_rebound_names_are_refused(served, tmp_path):
    sync = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium here (apt install chromium; CI installs it)")
    studio, target, evil, port = served
    with sync.sync_playwright() as p:
        # evil.example resolves to this machine, as a DNS rebinding attack makes it do.
        browser = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            page = browser.new_page()
            page.goto(target + "/?token=secret")   # the user opens the studio: the cookie is set
            page.goto(target + "/")                 # and comes back by the cookie alone
            page.get_by_test_id("label-thumbs_up").click()
            page.get_by_test_id("capture").click()  # the page's own request works (CSRF value)
            page.wait_for_function("document.querySelector('[data-testid=count-thumbs_up]').textContent === '1'")
            page.goto(evil)                         # another site on the same host, another port
            page.wait_for_function("document.title === 'sent'")
            page.evaluate("document.getElementById('f').submit()")
            page.wait_for_load_state()
            time.sleep(0.5)
            assert studio.session.counts["thumbs_up"] == 1, "nothing saved by the other page"
            r = page.goto(f"http://evil.example:{port}/frame.jpg")
            assert r.status == 421 and b"\xff\xd8" not in r.body()
        finally:
            browser.close()
