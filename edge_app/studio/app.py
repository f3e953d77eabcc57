"""The studio's web layer (Starlette): one page with no build step and nothing fetched from
the internet, the MJPEG preview, and a small JSON API over :class:`Studio`. Every request
passes the access token check when one is set; names coming from the page are checked
against the task (and file names against the dataset) before they touch the disk."""
from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

from edge_app.errors import UserError
from edge_app.studio.core import Studio

STATIC = Path(__file__).parent / "static"
BOUNDARY = "frame"


class TokenGate:
    """ASGI middleware: with a token, every request must carry it (``X-Token`` header,
    ``token`` query parameter, or the cookie the page gets when opened with ``?token=``)."""

    def __init__(self, app: Any, token: Optional[str]) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.token or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        await JSONResponse({"error": "this studio needs its access token: open the address "
                            "printed at start (it ends in ?token=...)"}, 401)(scope, receive, send)

    def _allowed(self, scope: Dict[str, Any]) -> bool:
        from starlette.requests import Request

        request = Request(scope)
        given = (request.headers.get("x-token") or request.query_params.get("token")
                 or request.cookies.get("studio_token") or "")
        return hmac.compare_digest(given.encode(), str(self.token).encode())


def build_app(studio: Studio, token: Optional[str] = None) -> Any:
    """The ASGI application for ``studio``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        """JSON in and out; a UserError is a 400 with its one line."""
        async def endpoint(request: Request) -> Response:
            try:
                out = await handler(request)
            except UserError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            return out if isinstance(out, Response) else JSONResponse(out if out is not None else {"ok": True})
        return endpoint

    async def body(request: Request) -> Dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise UserError("the request body must be JSON")
        if not isinstance(data, dict):
            raise UserError("the request body must be a JSON object")
        return data

    def text(data: Dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise UserError("'{}' is missing".format(key))
        return value

    def number(data: Dict[str, Any], key: str) -> float:
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError("'{}' must be a number".format(key))
        return float(value)

    async def page(request: Request) -> Response:
        response = FileResponse(STATIC / "index.html")
        if token and request.query_params.get("token"):
            response.set_cookie("studio_token", token, httponly=True, samesite="strict")
        return response

    async def stream(request: Request) -> Response:
        async def frames() -> Any:
            seq = 0
            while not studio.closed:
                seq, jpeg = await asyncio.get_running_loop().run_in_executor(
                    None, studio.latest_jpeg, seq, 1.0)
                if jpeg is None:
                    continue
                yield (b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                       + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=" + BOUNDARY)

    async def frame(request: Request) -> Response:
        _, jpeg = studio.latest_jpeg(-1, 0)
        return Response(jpeg or b"", media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Any:
        return studio.state()

    async def select(request: Request) -> Any:
        studio.select(text(await body(request), "label"))

    async def capture(request: Request) -> Any:
        studio.capture(text(await body(request), "label"))

    async def burst(request: Request) -> Any:
        data = await body(request)
        studio.burst(text(data, "label"), bool(data.get("on")))

    async def point(request: Request) -> Any:
        data = await body(request)
        return {"saved": studio.place(text(data, "name"), number(data, "x"), number(data, "y"))}

    async def points(request: Request) -> Any:
        action = text(await body(request), "action")
        if action not in ("save", "clear"):
            raise UserError("action must be save or clear")
        studio.save_points() if action == "save" else studio.clear_points()

    async def sample(request: Request) -> Any:
        folder, name = request.path_params["folder"], request.path_params["name"]
        if request.method == "DELETE":
            studio.delete(folder, name)
            return None
        return FileResponse(studio.sample_file(folder, name))

    async def train(request: Request) -> Any:
        data = await body(request)
        if data.get("action") == "stop":
            return {"stopped": studio.job.cancel()}
        mode = data.get("mode")
        studio.train(mode if isinstance(mode, str) else None)

    async def mode(request: Request) -> Any:
        await asyncio.get_running_loop().run_in_executor(None, studio.set_mode, text(await body(request), "mode"))

    routes = [
        Route("/", page), Route("/stream", stream), Route("/frame.jpg", frame),
        Route("/api/state", api(state)), Route("/api/select", api(select), methods=["POST"]),
        Route("/api/capture", api(capture), methods=["POST"]), Route("/api/burst", api(burst), methods=["POST"]),
        Route("/api/point", api(point), methods=["POST"]), Route("/api/points", api(points), methods=["POST"]),
        Route("/api/samples/{folder}/{name}", api(sample), methods=["GET", "DELETE"]),
        Route("/api/train", api(train), methods=["POST"]), Route("/api/mode", api(mode), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return TokenGate(Starlette(routes=routes), token)
