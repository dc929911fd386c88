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
"""

from __future__ import annotations

import logging
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


class AppChannel(HTTPChannel):
    error_task_class = AppErrorTask


def make_server(app: Flask, **adjustments: Any):
    """A waitress server for `app` (call .run()); the body limit is the app's own."""
    adjustments.setdefault("max_request_body_size", int(app.config["MAX_CONTENT_LENGTH"]) + 1)
    sockets: dict = {}
    server = create_server(app, map=sockets, **adjustments)
    for dispatcher in list(sockets.values()):  # one per address listened on
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = AppChannel
            dispatcher.flask_app = app
    return server
