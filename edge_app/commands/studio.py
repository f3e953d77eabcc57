"""``edge-app studio``: the course loop in a browser, for headless Jetsons."""
from __future__ import annotations

import argparse
import secrets
import shlex

from edge_app.commands.common import add_source, add_task
from edge_app.errors import UserError
from edge_app.subject import provider_names
from edge_app.tasks.spec import load_task

HELP = """A web page for a camera on this machine: the live preview, class buttons with counts,
capture (single, or hold to burst), click-to-label for keypoint tasks, recent captures with
delete, a Train button with progress and the validation curve, and live inference with the
newest model. One port, no internet needed (the page is served from here), so a headless
Jetson is used from a laptop's browser. Captures go through the capture tool's writer (atomic:
a browser that disconnects mid-burst loses nothing written). Localhost only unless --host says
otherwise; then an access token is required (made up and printed unless --token is given).

Review: with --collected DIR (the folder edge-app run --collect DIR fills) the Review view lists
the frames the model found hard, most uncertain first, with its guess: a key or a click confirms
or corrects it (drag the points for a point task) and it joins the dataset with its subject;
skipped ones can be deleted. Retrain (where torch is installed) trains on the dataset, scores
the new and the current model on a held-back part of the reviewed frames, and points the
`current` link (--current, default: the link the loop ran) at the new one only if it is better;
a loop running --model that link swaps it in. --source none needs no camera (the service may
hold it; or review a copied folder on a desktop)."""

EXAMPLES = """examples:
  edge-app studio --task thumbs --source usb:0                    # http://127.0.0.1:8080/
  edge-app studio --task face --source csi://0 --host 0.0.0.0     # from a laptop: use the printed address
  edge-app studio --task fingers --source sim://fingers --train-args "--mode fast --arch efficientnet_lite0\"
  edge-app studio --task thumbs --source none --collected collected/ --data data/thumbs --runs runs/studio-thumbs"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("studio", help="browser UI: capture, label, train, run live",
                       description=HELP, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task(p)
    add_source(p)
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: data/TASK)")
    p.add_argument("--runs", metavar="DIR", help="where trained bundles go (default: runs/studio-TASK)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: "
                   "this machine only; 0.0.0.0 for the network, with a token)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--token", help="access token for the page (default: none on localhost, "
                   "a random one otherwise)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a DNS name the page may be opened by, besides localhost and this "
                   "machine's own names and addresses (repeatable; others are refused against "
                   "DNS rebinding)")
    p.add_argument("--train-args", default="", metavar="ARGS",
                   help="extra options for edge-app train, e.g. \"--arch resnet18 --epochs 20\"")
    p.add_argument("--collected", metavar="DIR", help="review the frames edge-app run --collect DIR "
                   "kept (the Review view)")
    p.add_argument("--current", metavar="LINK", help="the link to the model in use, switched to a "
                   "better retrained one (default: the link the collecting loop ran, else RUNS/current)")
    p.add_argument("--subject-provider", default="auto", choices=provider_names(),
                   help="who finds the hand or face for crop models in live inference")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    # lazy: the studio (web server, live loop, training jobs) loads only when it runs
    from edge_app.studio.serve import serve

    task = load_task(args.task)
    _check_address(args.host, args.port)
    try:
        train_args = shlex.split(args.train_args)
    except ValueError as exc:   # "No closing quotation"
        raise UserError(f"--train-args {args.train_args!r}: {exc}; quote them as a shell would")
    local = args.host in ("127.0.0.1", "localhost", "::1")
    token = args.token or (None if local else secrets.token_urlsafe(12))
    fps = args.fps or (15.0 if args.source.startswith("sim://") else None)   # a camera's pace
    runs = Path(args.runs or "runs/studio-" + task.name)
    collected = Path(args.collected) if args.collected else None
    if collected is not None and not collected.is_dir():
        raise UserError(f"--collected {collected}: no such folder; give the folder edge-app run --collect "
                        "wrote")
    current = Path(args.current) if args.current else None
    if collected is not None and current is None and not _collected_link(collected):
        current = runs / "current"
    return serve(task, args.source, Path(args.data or "data/" + task.name), runs,
                 train_args, args.host, args.port, token, args.subject_provider,
                 args.width, args.height, fps, args.allow_host, collected, current)


def _check_address(host: str, port: int) -> None:
    """``--host`` and ``--port``, before the studio starts: a port in range that this machine can
    listen on (the web server's own failure is a log line and exit status 3)."""
    import socket

    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: out of range (1 to 65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the server does
            probe.bind(address)
    except OSError as exc:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                        "pick another port, or an address of this machine")


def _collected_link(collected) -> bool:
    """Whether a loop that collected into ``collected`` ran a model link (noted in model.json)."""
    import json

    for meta in collected.glob("*/model.json"):
        try:
            if json.loads(meta.read_text(encoding="utf-8")).get("link"):
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False
