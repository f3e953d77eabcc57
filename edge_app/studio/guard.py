"""Who may use the studio: ASGI middleware in front of the whole application that refuses,
before any handler runs,

- a ``Host`` this machine does not answer to (DNS rebinding: a page on ``evil.example`` whose
  name is made to resolve to 127.0.0.1 would otherwise read the camera and the API),
- a body larger than the API needs (by ``Content-Length``, and by counting the bytes of a
  chunked body as they are read: a 200 MB body once took 8 GB of memory),
- a missing or wrong access token, when there is one,
- a state-changing request (anything but GET, HEAD, OPTIONS) from another web page: its
  ``Origin`` (or ``Referer``) must be this server's own scheme, host and port; one with a
  cookie and neither header is refused too (every current browser sends ``Origin`` on such
  requests, so only an old or odd one is turned away; scripts such as curl send no cookie);
  and when the token came only from the cookie, the page's CSRF value must come in
  ``X-CSRF`` (a cookie is sent by the browser on its own; a header only by our page).

Every response also gets headers that keep it out of other pages (frames, embedding)."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

from edge_app.errors import UserError
from edge_app.runtime.serve import SECURITY_HEADERS as SERVE_HEADERS
from edge_app.runtime.serve import HostAllowList, same_origin, shorten

API_BODY_LIMIT = 4096   # bytes: the largest API request (a point) is under 100
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_COOKIE = "studio_token"
CSRF_HEADER = "x-csrf"
# The same headers as run --serve's (one list, edge_app.runtime.serve.SECURITY_HEADERS).
SECURITY_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SERVE_HEADERS]

Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


class Refused(UserError):
    """A request refused with an HTTP status other than 400 (the API shows its one line)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def too_large(limit: int) -> Refused:
    """The refusal of a body over ``limit`` bytes."""
    return Refused(f"the request body is larger than this API accepts ({limit} bytes)", 413)


class Guard:
    """The checks above, in front of ``app``. ``token``: the access token, or None (loopback)."""

    def __init__(self, app: Any, hosts: HostAllowList, token: Optional[str] = None,
                 limit: int = API_BODY_LIMIT) -> None:
        self.app, self.hosts, self.token, self.limit = app, hosts, token, limit
        self._key = secrets.token_bytes(32)   # signs the CSRF values of this run

    # -- CSRF values: a random nonce and its signature, so nothing is stored per session ----
    def new_csrf(self) -> str:
        """A CSRF value for one page load."""
        nonce = secrets.token_urlsafe(16)
        return nonce + "." + self._sign(nonce)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def csrf_ok(self, value: str) -> bool:
        """Whether ``value`` is one this run handed to a page."""
        nonce, _, mac = value.partition(".")
        return bool(nonce) and hmac.compare_digest(mac.encode(), self._sign(nonce).encode())

    # -- the middleware ---------------------------------------------------------------------
    async def __call__(self, scope: Dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":   # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        problem = self.check(scope)
        if problem is not None:
            await _refuse(send, *problem)
            return
        await self.app(scope, self._limited(receive), _with_headers(send))

    def check(self, scope: Dict[str, Any]) -> Optional[Tuple[int, str]]:
        """(status, reason) when the request is refused before it reaches the application."""
        headers = _headers(scope)
        if any(len(headers.get(name, [])) > 1 for name in ("host", "origin", "content-length")):
            return 400, "a header that must come once came several times"
        host = _first(headers, "host")
        if not self.hosts.allows(host):
            # 421 Misdirected Request: no frame, state or action for a rebound name.
            return 421, self.hosts.refusal(host)
        length = _first(headers, "content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.limit):
            return 413, str(too_large(self.limit))
        by_cookie = False
        if self.token:
            given, by_cookie = _token(scope, headers)
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, ("this studio needs its access token: open the address printed at "
                             "start (it ends in ?token=...)")
        if scope["method"] in SAFE_METHODS:
            return None
        return self._check_origin(scope, headers, host, by_cookie)

    def _check_origin(self, scope: Dict[str, Any], headers: Dict[str, List[str]],
                      host: Optional[str], by_cookie: bool) -> Optional[Tuple[int, str]]:
        scheme = str(scope.get("scheme", "http"))
        origin, referer = _first(headers, "origin"), _first(headers, "referer")
        if origin is not None:
            if not same_origin(origin, scheme, host):
                return 403, f"refused a request from another web page ({shorten(origin)})"
        elif referer is not None:   # same_origin reads only its scheme, host and port
            if not same_origin(referer, scheme, host):
                return 403, "refused a request from another web page"
        elif headers.get("cookie"):
            return 403, "refused a browser request that does not say which page sent it (no Origin)"
        if by_cookie and not self.csrf_ok(_first(headers, CSRF_HEADER) or ""):
            return 403, "this request lacks the page's CSRF value: reload the studio page"
        return None

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that stops a body (chunked ones included) once it passes the limit."""
        seen = [0]

        async def limited() -> Dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:
                    raise too_large(self.limit)
            return message
        return limited


def _headers(scope: Dict[str, Any]) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


def _first(headers: Dict[str, List[str]], name: str) -> Optional[str]:
    values = headers.get(name)
    return values[0] if values else None


def _token(scope: Dict[str, Any], headers: Dict[str, List[str]]) -> Tuple[str, bool]:
    """The token a request carries, and whether only its cookie carried it (the one way a
    browser adds it by itself, so the one that needs the CSRF value)."""
    header = _first(headers, "x-token")
    if header:
        return header, False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    if query:
        return query[0], False
    return _cookie(headers, TOKEN_COOKIE), True


def _cookie(headers: Dict[str, List[str]], name: str) -> str:
    from starlette.requests import cookie_parser  # the parser the application itself uses

    for line in headers.get("cookie", []):
        value = cookie_parser(line).get(name)
        if value:
            return value
    return ""


def _with_headers(send: Send) -> Send:
    async def sending(message: Dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message = dict(message, headers=list(message.get("headers", [])) + extra)
        await send(message)
    return sending


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}, allow_nan=False).encode()
    await _with_headers(send)({"type": "http.response.start", "status": status,
                               "headers": [(b"content-type", b"application/json"),
                                           (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
