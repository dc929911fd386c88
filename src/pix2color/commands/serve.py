"""`pix2color serve`: the web service on waitress, a production WSGI server (never debug)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK, UsageError, WorkFailed


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser(
        "serve",
        help=COMMANDS["serve"],
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
    s.add_argument(
        "--threads",
        type=int,
        help="request threads (default: slots + INFERENCE_QUEUE + 4, so that 4 always serve "
        "light requests such as /healthz while the others colour or wait for a slot)",
    )
    s.add_argument(
        "--slots",
        type=int,
        help="photos coloured (or results encoded) at once; each takes ~5 bytes a pixel "
        "(default: 2)",
    )
    s.add_argument(
        "--connection-limit",
        type=int,
        default=200,
        help="open connections in all (waitress's connection_limit; default: 200)",
    )
    s.add_argument(
        "--connections-per-client",
        type=int,
        help="open connections per client address; more are closed at once (default: 32; "
        "0 behind a reverse proxy, TRUSTED_PROXIES: there every client has the proxy's "
        "address, and the proxy caps them)",
    )
    s.add_argument(
        "--channel-timeout",
        type=int,
        default=30,
        help="seconds an idle connection is kept open (waitress's channel_timeout; default: 30)",
    )
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pix2color.web import create_app
    from pix2color.web.database import StoreError
    from pix2color.web.engine import limit_malloc_arenas
    from pix2color.web.server import make_server

    # before any thread starts: few malloc arenas, so freed memory is reused and trimmed
    limit_malloc_arenas(2)
    given = {
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
        app = create_app(settings=given)
    except StoreError as e:  # at start-up, a store that cannot be opened is a setting to fix
        raise UsageError(str(e)) from None
    assert not app.debug, "serve never runs in debug mode"
    service = app.extensions["pix2color"]
    settings = service.settings
    # each slot's forward pass gets its share of the cores, so slots do not fight over them
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.inference_slots))
    # heavy work holds at most slots + queue threads; the rest answer light requests at once
    heavy = settings.inference_slots + settings.inference_queue
    threads = args.threads or heavy + 4
    if threads <= heavy:
        print(
            f"warning: --threads {threads} is not above slots + INFERENCE_QUEUE ({heavy}): "
            "/healthz and pages can wait behind colouring",
            file=sys.stderr,
        )
    behind_proxy = bool(app.config["TRUSTED_PROXIES"])
    per_client = args.connections_per_client
    if per_client is None:
        per_client = 0 if behind_proxy else 32
    print(
        f"pix2color serving http://{args.host}:{args.port}/  "
        f"models: {', '.join(service.engine.names)}; store: {service.store.describe()}; "
        f"instance: {settings.folder}; {threads} threads, {settings.inference_slots} slots; "
        + ("statistics: /admin" if settings.admin_token else "statistics off (no ADMIN_TOKEN)"),
        file=sys.stderr,
        flush=True,
    )
    try:
        logging.basicConfig()  # what waitress.serve does: its warnings reach stderr
        server = make_server(
            app,
            host=args.host,
            port=args.port,
            threads=threads,
            ident="pix2color",
            # the app's own limit: a bigger body is refused from its Content-Length, unread,
            # with the app's JSON 413 (see pix2color.web.server)
            max_request_body_size=settings.max_bytes + 1,
            connection_limit=args.connection_limit,
            per_client=per_client,
            channel_timeout=args.channel_timeout,
            cleanup_interval=max(1, min(10, args.channel_timeout)),  # idle ones go in time
        )
        server.print_listen("Serving on http://{}:{}")
        server.run()
    except OSError as e:
        raise WorkFailed(f"cannot listen on {args.host}:{args.port}: {e}") from None
    finally:
        service.store.close()
    return EXIT_OK
