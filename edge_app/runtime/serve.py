"""``--serve HOST:PORT``: the annotated stream as MJPEG plus the latest results as JSON, for a
headless Jetson watched from a laptop's browser. Standard library HTTP server in its own
threads; the loop only hands over its newest frame (encoding happens in the sink's thread).

Also the rules both web servers of this machine (this one and the studio) use to decide whom
they answer: a Host allow-list (against DNS rebinding: a web page whose own name is made to
resolve to this machine would otherwise read the camera) and a same-origin test for the
requests that change something."""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

import numpy as np

from edge_app.dataset.atomic import json_text
from edge_app.errors import UserError
from edge_app.opencv import cv2
from edge_app.runtime.sinks import ThreadedSink

log = logging.getLogger(__name__)
PAGE = b"""<!doctype html><title>edge-app</title>
<body style="margin:0;background:#111;color:#ddd;font-family:sans-serif">
<img src="/stream" style="max-width:100%"><pre id="r"></pre>
<script>setInterval(()=>fetch('/results').then(r=>r.json()).then(j=>{
document.getElementById('r').textContent=JSON.stringify(j.results,null,1)}),500)</script>"""

# Headers on every answer of both servers: kept out of other pages' frames and <img> tags, never
# sniffed as another type, and no Referer (with the studio's ?token=) to other sites.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),                       # no clickjacking through a frame
    ("Cross-Origin-Resource-Policy", "same-origin"),   # no <img src> of the camera elsewhere
    ("Referrer-Policy", "same-origin"),                # the ?token= never leaves in a Referer
)
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)   # a viewer left

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD = ("0.0.0.0", "::", "")
REFRESH_SECONDS = 5.0   # a DHCP lease may change the machine's addresses while serving


def parse_address(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (localhost)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise UserError(f"--serve {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    if not 0 <= number <= 65535:
        raise UserError(f"--serve {text!r}: port {number} is out of range (0 to 65535; 0 picks a free one)")
    return host or "127.0.0.1", number


# -- whom a server on this machine answers ----------------------------------------------------
def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters and safe to put in a UTF-8 message: what a request
    sent is echoed only this far (a 50 MB label once came back whole)."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def normal_name(name: str) -> str:
    """A host name or address as compared: lower case, no trailing dot or brackets, and an IP
    address in its one canonical spelling."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def split_host(header: Optional[str]) -> Tuple[str, Optional[int]]:
    """A Host header (``name``, ``name:port``, ``[v6]:port``) as (normal name, port or None);
    ``("", None)`` when missing or malformed."""
    text = (header or "").strip()
    if not text or len(text) > 300:
        return "", None
    try:
        parts = urlsplit("//" + text)
        port = parts.port
    except ValueError:
        return "", None
    if parts.hostname is None or parts.username is not None or parts.path or parts.query:
        return "", None
    return normal_name(parts.hostname), port


def same_origin(origin: str, scheme: str, host_header: Optional[str]) -> bool:
    """Whether ``origin`` (an ``Origin`` header, or a ``Referer``: only its scheme, name and
    port are read) is this server as the request reached it: the same scheme, name and port as
    its ``Host`` header. A page on another port of the same machine is another origin (and the
    cookie does not tell them apart), so the port counts."""
    name, port = split_host(host_header)
    try:
        parts = urlsplit(origin.strip())
        other_port = parts.port
    except ValueError:
        return False
    defaults = {"http": 80, "https": 443}
    scheme = scheme.lower()
    if not name or parts.scheme.lower() != scheme or parts.hostname is None:
        return False
    return (normal_name(parts.hostname) == name
            and (other_port or defaults.get(scheme)) == (port or defaults.get(scheme)))


def machine_names() -> Set[str]:
    """This machine's own names: its host name and the ``.local`` one mDNS gives it."""
    name = socket.gethostname().lower()
    return {name, name + ".local"} if name else set()


def interface_addresses() -> Set[str]:
    """The IP addresses of this machine's interfaces (read from /proc on Linux, without a DNS
    lookup that could hang an offline Jetson; the host name's addresses elsewhere)."""
    found = _proc_ipv4() | _proc_ipv6()
    if not found:
        try:
            found = {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    return {normal_name(a) for a in found}


def _proc_ipv4() -> Set[str]:
    """The local addresses in the kernel's routing trie (``/32 host LOCAL`` under each)."""
    found: Set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return found
    last = ""
    for line in lines:
        text = line.strip()
        if text.startswith("|--"):
            last = text[3:].strip()
        elif "/32 host LOCAL" in text and last:
            found.add(last)
    return found


def _proc_ipv6() -> Set[str]:
    found: Set[str] = set()
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if fields and len(fields[0]) == 32:
            try:
                found.add(str(ipaddress.IPv6Address(int(fields[0], 16))))
            except ValueError:
                continue
    return found


def is_loopback(bind: str) -> bool:
    """Whether a listening address reaches only this machine."""
    name = normal_name(bind)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostAllowList:
    """The names a server bound to ``bind`` answers to. Bound to loopback: the localhost names;
    bound to all interfaces (0.0.0.0, ::): those plus this machine's interface addresses and
    its own names; bound to one address: that one and the machine's names; plus every
    ``--allow-host`` name. A browser sends the name it was given in ``Host``, so a DNS
    rebinding page (``evil.example`` resolved to this machine) is refused."""

    def __init__(self, bind: str, extra: Sequence[str] = ()) -> None:
        self.bind = bind
        self.wildcard = bind.strip() in WILDCARD
        self.fixed = {normal_name(n) for n in extra if n.strip()}
        if not self.wildcard:
            self.fixed.add(normal_name(bind))
        if self.wildcard or is_loopback(bind):
            self.fixed.update(normal_name(n) for n in LOOPBACK_NAMES)
        if not is_loopback(bind):
            self.fixed |= machine_names()
        self._addresses: Set[str] = set()
        self._read_at = -REFRESH_SECONDS
        if self.wildcard:
            self._refresh()

    def _refresh(self) -> None:
        self._addresses, self._read_at = interface_addresses(), time.monotonic()

    def allows(self, header: Optional[str]) -> bool:
        """Whether a request with this ``Host`` header is for this server."""
        name, _ = split_host(header)
        if not name:
            return False
        if name in self.fixed or name in self._addresses:
            return True
        if self.wildcard and _is_ip(name) and time.monotonic() - self._read_at > REFRESH_SECONDS:
            self._refresh()   # an address that came up after the start (a new DHCP lease)
            return name in self._addresses
        return False

    def refusal(self, header: Optional[str]) -> str:
        """The one line a refused request gets."""
        return ("this server does not answer to the host name {!r} (a protection against DNS "
                "rebinding): open it by its address, or start it with --allow-host NAME".format(
                    shorten(header or "")))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class ServeSink(ThreadedSink):
    """Keeps the newest JPEG and record; serves them over HTTP to requests whose ``Host`` is
    this machine (see :class:`HostAllowList`; ``allow_hosts``: more DNS names to answer to)."""

    def __init__(self, address: str, quality: int = 80, allow_hosts: Sequence[str] = ()) -> None:
        self.host, self.port = parse_address(address)
        self.hosts = HostAllowList(self.host, allow_hosts)
        self.quality = quality
        self._cond = threading.Condition()
        self._jpeg: Optional[bytes] = None
        self._record: Dict[str, Any] = {}
        self._seq = 0
        self._closing = threading.Event()
        try:
            self.server = ThreadingHTTPServer((self.host, self.port), self._handler())
        except OSError as exc:
            raise UserError(f"--serve {self.host}:{self.port}: {exc.strerror} (port in use? pick another)")
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

            def handle(self) -> None:
                # A client that hangs up early (a closed tab, a slow client giving up) is
                # normal: one debug line, not the server's traceback on stderr.
                try:
                    super().handle()
                except DISCONNECTS as exc:
                    log.debug("serve: %s hung up (%s)", self.client_address[0], exc.__class__.__name__)
                    self.close_connection = True

            def end_headers(self) -> None:
                for name, value in SECURITY_HEADERS:
                    self.send_header(name, value)
                super().end_headers()

            def do_GET(self) -> None:
                if not sink.hosts.allows(self.headers.get("Host")):
                    # Misdirected: a page whose name was rebound to this machine gets no frame.
                    self._send(421, "text/plain", sink.hosts.refusal(self.headers.get("Host")).encode())
                    return
                if self.path == "/":
                    self._send(200, "text/html", PAGE)
                elif self.path == "/results":
                    with sink._cond:
                        body = json_text(sink._record).encode()
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
                except DISCONNECTS:
                    log.debug("serve: a viewer of /stream went away")

        return Handler
