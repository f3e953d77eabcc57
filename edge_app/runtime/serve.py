"""``--serve HOST:PORT``: the annotated stream as MJPEG plus the latest results as JSON, for a
headless Jetson watched from a laptop's browser. Standard library HTTP server in its own
threads; the loop only hands over its newest frame (encoding happens in the sink's thread)."""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge_app.cv import cv2
from edge_app.errors import UserError
from edge_app.runtime.sinks import ThreadedSink

log = logging.getLogger(__name__)
PAGE = b"""<!doctype html><title>edge-app</title>
<body style="margin:0;background:#111;color:#ddd;font-family:sans-serif">
<img src="/stream" style="max-width:100%"><pre id="r"></pre>
<script>setInterval(()=>fetch('/results').then(r=>r.json()).then(j=>{
document.getElementById('r').textContent=JSON.stringify(j.results,null,1)}),500)</script>"""


def parse_address(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (localhost)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise UserError("--serve {!r}: expected HOST:PORT, e.g. 127.0.0.1:8080".format(text))
    return host or "127.0.0.1", number


class ServeSink(ThreadedSink):
    """Keeps the newest JPEG and record; serves them over HTTP."""

    def __init__(self, address: str, quality: int = 80) -> None:
        self.host, self.port = parse_address(address)
        self.quality = quality
        self._cond = threading.Condition()
        self._jpeg: Optional[bytes] = None
        self._record: Dict[str, Any] = {}
        self._seq = 0
        self._closing = threading.Event()
        try:
            self.server = ThreadingHTTPServer((self.host, self.port), self._handler())
        except OSError as exc:
            raise UserError("--serve {}:{}: {} (port in use? pick another)".format(
                self.host, self.port, exc.strerror))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("serving on %s:%d: anyone on this network can watch the camera",
                        self.host, self.port)
        self._http = threading.Thread(target=self.server.serve_forever, name="serve-http", daemon=True)
        self._http.start()
        super().__init__("serve", maxsize=2)

    def handle(self, frame: np.ndarray, record: Dict[str, Any]) -> None:
        cv = cv2()
        ok, buf = cv.imencode(".jpg", frame, [cv.IMWRITE_JPEG_QUALITY, self.quality])
        with self._cond:
            if ok:
                self._jpeg = buf.tobytes()
            self._record = record
            self._seq += 1
            self._cond.notify_all()

    def latest(self, after: int, timeout: float = 1.0) -> Tuple[int, Optional[bytes]]:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closing.is_set(), timeout)
            return self._seq, self._jpeg

    def finish(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> Any:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:   # keep the terminal for the loop
                pass

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(200, "text/html", PAGE)
                elif self.path == "/results":
                    with sink._cond:
                        body = json.dumps(sink._record).encode()
                    self._send(200, "application/json", body)
                elif self.path == "/stream":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                seq = 0
                try:
                    while not sink._closing.is_set():
                        seq, jpeg = sink.latest(seq)
                        if jpeg is None:
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the viewer went away

        return Handler
