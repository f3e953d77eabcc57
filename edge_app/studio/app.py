"""The studio's web layer (Starlette): one page with no build step and nothing fetched from
the internet, the MJPEG preview, and a small JSON API over :class:`Studio`. Every request
first passes :class:`~edge_app.studio.guard.Guard` (Host allow-list, body limit, access token,
same-origin and CSRF checks); names coming from the page are checked against the task (and
file names against the dataset) before they touch the disk."""
from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence

from edge_app.errors import UserError
from edge_app.runtime.serve import HostAllowList, shorten
from edge_app.studio.core import Studio
from edge_app.studio.guard import API_BODY_LIMIT, TOKEN_COOKIE, Guard, Refused, too_large

STATIC = Path(__file__).parent / "static"
BOUNDARY = "frame"
CSRF_SLOT = '<meta name="studio-csrf" content="">'


def build_app(studio: Studio, token: Optional[str] = None, host: str = "127.0.0.1",
              allow_hosts: Sequence[str] = ()) -> Guard:
    """The ASGI application for ``studio`` listening on ``host`` (which decides the host names
    it answers to, with ``allow_hosts``), behind its :class:`Guard`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        """JSON in and out; a UserError is a 400 (or its own status) with its one line."""
        async def endpoint(request: Request) -> Response:
            try:
                out = await handler(request)
            except UserError as exc:   # cut and made UTF-8-safe, whatever name it quotes
                return JSONResponse({"error": shorten(str(exc), 400)}, getattr(exc, "status", 400))
            return out if isinstance(out, Response) else JSONResponse(out if out is not None else {"ok": True})
        return endpoint

    async def body(request: Request) -> Dict[str, Any]:
        # Only JSON's own type: a cross-site form or "simple" fetch can send text/plain
        # without asking first, but not application/json.
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Refused("send the request as JSON (Content-Type: application/json)", 415)
        raw = b""
        async for chunk in request.stream():   # the guard counts too; this is the parser's cap
            raw += chunk
            if len(raw) > API_BODY_LIMIT:
                raise too_large(API_BODY_LIMIT)
        try:
            data = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):   # deep nesting is a RecursionError, not a 500
            raise UserError("the request body must be JSON")
        if not isinstance(data, dict):
            raise UserError("the request body must be a JSON object")
        return data

    def text(data: Dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise UserError(f"'{key}' is missing")
        return value

    def number(data: Dict[str, Any], key: str) -> float:
        value = data.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise UserError(f"'{key}' must be a number")
        try:
            out = float(value)   # a 4000-digit integer is valid JSON and overflows a float
        except OverflowError:
            out = math.inf
        if not math.isfinite(out):
            raise UserError(f"'{key}' must be a finite number")
        return out

    async def page(request: Request) -> Response:
        # Each page load gets its own CSRF value, which its script sends in X-CSRF.
        html = (STATIC / "index.html").read_text(encoding="utf-8").replace(
            CSRF_SLOT, f'<meta name="studio-csrf" content="{guard.new_csrf()}">')
        response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        if token and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
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
        # It may wait for queued shots to reach the disk: not in the event loop.
        await asyncio.get_running_loop().run_in_executor(
            None, studio.train, mode if isinstance(mode, str) else None)

    async def mode(request: Request) -> Any:
        await asyncio.get_running_loop().run_in_executor(None, studio.set_mode, text(await body(request), "mode"))

    async def review(request: Request) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, studio.review_state)

    async def review_image(request: Request) -> Any:
        data = await asyncio.get_running_loop().run_in_executor(
            None, studio.review_image, request.path_params["model"], request.path_params["name"])
        return Response(data, media_type="image/jpeg")

    async def review_action(request: Request) -> Any:
        action = request.path_params["action"]
        data = await body(request)
        run = asyncio.get_running_loop().run_in_executor
        if action == "retrain":
            mode = data.get("mode")
            await run(None, studio.review_retrain, mode if isinstance(mode, str) else None)
            return None
        if action in ("switch", "rollback"):
            return await run(None, studio.review_switch if action == "switch" else studio.review_rollback)
        model, name = text(data, "model"), text(data, "file")
        if action == "confirm":
            label, points = data.get("label"), data.get("points")
            where = await run(None, studio.review_confirm, model, name,
                              label if isinstance(label, str) else None,
                              points if isinstance(points, dict) else None)
            return {"to": where}
        if action == "skip":
            studio.review_skip(model, name)
            return None
        if action == "delete":
            await run(None, studio.review_delete, model, name)
            return None
        raise UserError("unknown review action: confirm, skip, delete, retrain, switch or rollback")

    routes = [
        Route("/", page), Route("/stream", stream), Route("/frame.jpg", frame),
        Route("/api/state", api(state)), Route("/api/select", api(select), methods=["POST"]),
        Route("/api/capture", api(capture), methods=["POST"]), Route("/api/burst", api(burst), methods=["POST"]),
        Route("/api/point", api(point), methods=["POST"]), Route("/api/points", api(points), methods=["POST"]),
        Route("/api/samples/{folder}/{name}", api(sample), methods=["GET", "DELETE"]),
        Route("/api/train", api(train), methods=["POST"]), Route("/api/mode", api(mode), methods=["POST"]),
        Route("/api/review", api(review)),
        Route("/api/review/image/{model}/{name}", api(review_image)),
        Route("/api/review/{action}", api(review_action), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    guard = Guard(Starlette(routes=routes), HostAllowList(host, allow_hosts), token)
    return guard


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, whatever Python's parser accepts."""
    raise ValueError(f"{name} is not JSON")
