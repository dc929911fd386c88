"""`pix2color serve`: the web service on waitress, a production WSGI server (never debug)."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` command to the CLI's subparsers."""
    s = subparsers.add_parser(
        "serve",
        help="run the web page and JSON API (waitress; never debug mode)",
        description="Serve the page (upload, compare, rate, download), the JSON API under "
        "/api/v1 and /healthz. More settings (ADMIN_TOKEN, MAX_PIXELS, FILE_TTL, ...) come from "
        "INSTANCE/config.py or PIX2COLOR_WEB_<KEY> environment variables.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        help="shipped names or paths, name=path to name one (default: every shipped model)",
    )
    s.add_argument(
        "--instance",
        metavar="DIR",
        help="instance folder: database, files, config.py (default: ./instance)",
    )
    s.add_argument(
        "--database-url",
        metavar="URL",
        help="postgresql://user@host:port/db to share one store between processes "
        "(default: SQLite in the instance folder)",
    )
    s.add_argument("--size", type=int, help="default working size (default: 256)")
    s.add_argument("--threads", type=int, default=8, help="request threads (default: 8)")
    s.add_argument(
        "--slots",
        type=int,
        help="photos coloured at once; each takes ~100 MB per megapixel (default: 2)",
    )
    s.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    import torch
    import waitress

    from pix2color.models.io import ModelNotFoundError
    from pix2color.web import create_app
    from pix2color.web.store import StoreError

    settings = {
        key: value
        for key, value in (
            ("INSTANCE_PATH", args.instance),
            ("DATABASE_URL", args.database_url),
            ("MODELS", args.models),
            ("DEFAULT_SIZE", args.size),
            ("INFERENCE_SLOTS", args.slots),
        )
        if value is not None
    }
    try:
        app = create_app(settings=settings)
    except (ModelNotFoundError, StoreError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    assert not app.debug, "serve never runs in debug mode"
    cfg = app.config
    slots = int(cfg["INFERENCE_SLOTS"])
    # each slot's forward pass gets its share of the cores, so slots do not fight over them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // slots))
    service = app.extensions["pix2color"]
    models = ", ".join(service.engine.names)
    print(
        f"pix2color serving http://{args.host}:{args.port}/  models: {models}; "
        f"store: {service.store.describe()}; instance: {app.instance_path}; "
        + ("statistics: /admin" if cfg["ADMIN_TOKEN"] else "statistics off (no ADMIN_TOKEN)"),
        file=sys.stderr,
        flush=True,
    )
    try:
        waitress.serve(
            app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="pix2color",
            # a body far over the app's limit is cut by waitress; nearer ones get the app's 413
            max_request_body_size=2 * int(cfg["MAX_CONTENT_LENGTH"]) + 2**20,
            channel_timeout=120,
            connection_limit=200,
        )
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    finally:
        service.store.close()
    return 0
