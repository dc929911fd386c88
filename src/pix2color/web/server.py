"""Waitress for this app: its own refusals are answered the way the app answers them.

Waitress refuses some requests before the app sees them: a body over its
`max_request_body_size` (from the Content-Length header, before reading the body, or while
reading a chunked one), headers too large, a request it cannot parse. By default it answers
those in text/plain, but the API promises JSON for every error. Here its error task asks the app
to render the refusal instead: the app's own message, as JSON for the API, /healthz and fetches
(an HTML page for a person's browser), with the app's security and cache headers.

The body limit is the app's MAX_CONTENT_LENGTH itself (waitress refuses a Content-Length at or
over its limit, Flask one over its limit: the two agree to the byte), so an oversized body is
refused from its header without being read or buffered, in the app's words.

Connections: waitress caps only the total (`connection_limit`; over it, it stops accepting, so
one client holding idle connections makes everybody, /healthz included, wait in the listen
backlog until `channel_timeout` closes them). `per_client` adds a cap per client address: a
connection over it is closed as soon as it is accepted. Behind a reverse proxy every
connection comes from the proxy's address, so there the proxy must cap clients itself
(docs/deploy.md) and `per_client` is off.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from werkzeug.exceptions import HTTPException, default_exceptions

log = logging.getLogger(__name__)


def refusal(app: Flask, code: int, path: str, method: str, accept: str, detail: str = ""):
    """The app's answer to a request waitress refused -> (status line, headers, body)."""
    kind = default_exceptions.get(code) or default_exceptions[500]
    error: HTTPException = kind(description=detail or None) if code != 413 else kind()
    headers = {"Accept": accept} if accept else {}
    with app.test_request_context(path or "/", method=method or "GET", headers=headers):
        response = app.make_response(app.handle_http_exception(error))
        response = app.process_response(response)
        body = response.get_data()
        kept = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    return response.status, kept, body


class AppErrorTask(ErrorTask):
    """Waitress's error task, with the body and headers the app gives for that status."""

    def execute(self) -> None:
        request, error = self.request, self.request.error
        app = self.channel.server.flask_app  # .application is waitress's wrapper around it
        try:
            status, headers, body = refusal(
                app,
                error.code,
                request.path or "/",
                request.command or "GET",
                request.headers.get("ACCEPT", ""),
                error.body,
            )
        except Exception:  # never worse than waitress's own answer
            log.exception("could not render waitress's %s refusal as the app's", error.code)
            super().execute()
            return
        self.status = status
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ClientCount:
    """Open connections per client address, and the cap on them (0: no cap)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}
        self.refused = 0
        self._lock = threading.Lock()
        self._last_warning = 0.0

    def add(self, client: str) -> bool:
        """Count a new connection -> False when it is over the cap (it is not counted)."""
        with self._lock:
            n = self.open.get(client, 0)
            if self.cap and n >= self.cap:
                self.refused += 1
                now = time.monotonic()
                if now - self._last_warning > 60:  # at most a line a minute
                    self._last_warning = now
                    log.warning(
                        "%s holds %d connections (the cap per client); closing new ones "
                        "(%d so far)",
                        client,
                        n,
                        self.refused,
                    )
                return False
            self.open[client] = n + 1
            return True

    def remove(self, client: str) -> None:
        with self._lock:
            n = self.open.get(client, 0) - 1
            if n > 0:
                self.open[client] = n
            else:
                self.open.pop(client, None)


class AppChannel(HTTPChannel):
    error_task_class = AppErrorTask

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map)
        clients: ClientCount = server.clients
        client = str(addr[0]) if isinstance(addr, tuple) and addr else "?"
        self._client: str | None = None
        if clients.add(client):
            self._client = client
        else:
            self.handle_close()  # over this client's cap: closed before it is read

    def del_channel(self, map=None) -> None:
        if getattr(self, "_client", None) is not None:
            self.server.clients.remove(self._client)
            self._client = None
        super().del_channel(map)


def make_server(app: Flask, *, per_client: int = 0, **adjustments: Any):
    """A waitress server for `app` (call .run()); the body limit is the app's own.

    per_client: at most this many open connections per client address (0: no cap).
    """
    adjustments.setdefault("max_request_body_size", int(app.config["MAX_CONTENT_LENGTH"]) + 1)
    if int(app.config.get("TRUSTED_PROXIES") or 0):
        # waitress deletes every X-Forwarded-* header unless told whom to trust; the app's
        # ProxyFix believes exactly TRUSTED_PROXIES of them, so waitress must pass them on
        adjustments.setdefault("clear_untrusted_proxy_headers", False)
    sockets: dict = {}
    server = create_server(app, map=sockets, **adjustments)
    clients = ClientCount(per_client)
    for dispatcher in list(sockets.values()):  # one per address listened on
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = AppChannel
            dispatcher.flask_app = app
            dispatcher.clients = clients
    return server
