"""Serving the studio with uvicorn until Ctrl-C or SIGTERM, then closing it cleanly."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence

from edge_app.errors import UserError
from edge_app.studio.app import build_app
from edge_app.studio.core import Studio
from edge_app.tasks.spec import TaskSpec

log = logging.getLogger(__name__)
INSTALL = "the studio needs its web extra: pip install 'edge-app[studio]' (starlette, uvicorn)"


def serve(task: TaskSpec, source: str, data: Path, runs: Path, train_args: List[str], host: str,
          port: int, token: Optional[str], provider: str = "auto", width: Optional[int] = None,
          height: Optional[int] = None, fps: Optional[float] = None,
          allow_hosts: Sequence[str] = (), collected: Optional[Path] = None,
          current: Optional[Path] = None) -> int:
    """Serve the studio on ``host:port`` until stopped; ``allow_hosts``: DNS names besides this
    machine's own that the page may be opened by."""
    try:
        import uvicorn
    except ImportError as exc:
        raise UserError(f"{INSTALL} ({exc})")

    studio = Studio(task, source, data, runs, train_args, provider, width, height, fps, collected,
                    current)
    try:
        studio.start()   # opens the camera: an unplugged one is one line, after a clean close
        app = build_app(studio, token, host, allow_hosts)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        print("studio for task {} on {}: http://{}:{}/{}".format(
            task.name, studio.source.describe(), shown, port, "?token=" + token if token else ""))
        print(f"dataset: {data}  models: {runs}  (Ctrl-C stops)")
        if collected is not None:
            print(f"review: {collected} (the Review view)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("listening on %s:%d: anyone on this network who has the token can see the "
                        "camera and change the dataset", host, port)
        server.run()
    finally:
        studio.close()
    return 0
