"""``edge-app run --serve`` and its clients (issue 34, findings 4 and 12): a client that hangs
up early is normal (no traceback on the terminal, the server goes on), and every answer
carries the headers the studio sends (no framing, no embedding by other sites)."""
from __future__ import annotations

import http.client
import socket
import struct
import threading
import time

import numpy as np
import pytest

HANG_GUARD = 120.0   # seconds: only against a hang, never a timing


@pytest.fixture
def sink():
    from edge_app.runtime.serve import ServeSink

    sink = ServeSink("127.0.0.1:0")
    sink.handle(np.full((48, 64, 3), 120, np.uint8), {"results": [{"label": "thumbs_up"}]})
    yield sink
    sink.finish()


def _get(port, path, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    r = conn.getresponse()
    headers = {k.lower(): v for k, v in r.getheaders()}
    if path != "/stream":
        r.read()
    conn.close()
    return r.status, headers


def _counting(sink):
    """A counter of the requests the server has finished with (error handling included)."""
    done, cond = [0], threading.Condition()
    real = sink.server.shutdown_request

    def counted(request):
        real(request)
        with cond:
            done[0] += 1
            cond.notify_all()

    sink.server.shutdown_request = counted

    def wait_for(n):
        with cond:
            assert cond.wait_for(lambda: done[0] >= n, HANG_GUARD), f"{done[0]} of {n} requests handled"
    return wait_for


def _hang_up(port, path):
    """Send a request and hang up at once with a reset (SO_LINGER 0), as a client that gives up."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_clients_hanging_up_early_print_no_traceback(sink, capfd):
    wait_for = _counting(sink)
    paths = ["/", "/results", "/stream", "/nope"] * 10
    for path in paths:
        _hang_up(sink.port, path)
    wait_for(len(paths))
    # A viewer of the stream that leaves after its first frame.
    viewer = socket.create_connection(("127.0.0.1", sink.port), timeout=30)
    viewer.sendall(f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{sink.port}\r\n\r\n".encode())
    seen = b""
    while b"--frame" not in seen:
        chunk = viewer.recv(4096)
        assert chunk, "the stream ended"
        seen += chunk
    viewer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    viewer.close()
    for i in range(3):   # new frames, written to the viewer that left
        sink.handle(np.full((48, 64, 3), 10 * i, np.uint8), {"results": []})
        time.sleep(0.05)
    assert _get(sink.port, "/results")[0] == 200, "the server goes on"
    wait_for(len(paths) + 2)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err, err


def test_every_answer_carries_the_studio_security_headers(sink):
    from edge_app.studio.guard import SECURITY_HEADERS

    want = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    assert want["x-frame-options"] == "DENY" and want["cross-origin-resource-policy"] == "same-origin"
    port = sink.port
    for path, host, status in [("/", None, 200), ("/results", None, 200), ("/stream", None, 200),
                               ("/nope", None, 404), ("/results", "evil.example", 421)]:
        got, headers = _get(port, path, host)
        assert got == status, path
        for name, value in want.items():
            assert headers.get(name) == value, (path, name, headers)
