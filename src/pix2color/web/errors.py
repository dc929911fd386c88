"""Every refusal is an answer: a status and a message that says what to do, as JSON or HTML.

JSON for the API, /healthz and the page's own fetches (`Accept: application/json`); an HTML
page for a person's browser. Unexpected exceptions are logged with their traceback and answered
500 without one: the server keeps serving.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from pix2color.guide.points import PointsError
from pix2color.web.database import StoreError
from pix2color.web.engine import Busy
from pix2color.web.forms import FormTooLarge
from pix2color.web.store import RatingError

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 5


class WebError(Exception):
    """A request that cannot be served: an HTTP status and a message that says what to do."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def sentence(message: str) -> str:
    """Capitalise a message for a page, unless it starts with a file's name (`notes.png: ...`)."""
    first = message.split(" ", 1)[0]
    return message[:1].upper() + message[1:] if first.rstrip(",").isalpha() else message


def wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path == "/healthz"
        or request.path.endswith(".json")
        or request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    if wants_json():
        response = jsonify(error=message, status=status)
    else:
        response = Response(render_template("error.html", status=status, message=message))
        response.mimetype = "text/html"
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


_MESSAGES = {
    404: "nothing here: the link is wrong, or the photo has expired (photos are kept for a "
    "limited time); upload it again",
    405: "this address does not accept a {method} request",
}


def register_error_handlers(app: Flask) -> None:
    app.jinja_env.filters["sentence"] = sentence

    @app.errorhandler(WebError)
    def _web_error(e: WebError):
        return error_response(e.status, e.message, e.retry_after)

    @app.errorhandler(RatingError)
    def _rating(e: RatingError):
        return error_response(400, str(e))

    @app.errorhandler(PointsError)
    def _points(e: PointsError):  # colour points that cannot be used: the message names the field
        return error_response(400, str(e))

    @app.errorhandler(Busy)
    def _busy(e: Busy):
        return error_response(503, str(e), BUSY_RETRY_SECONDS)

    @app.errorhandler(StoreError)
    def _store(e: StoreError):
        log.error("database error on %s %s: %s", request.method, request.path, e)
        return error_response(503, "the server cannot reach its database; try again shortly", 30)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        status = e.code or 500
        if isinstance(e, FormTooLarge):  # a field or the parts, not the whole request
            message = str(e.description)
        elif status == 413:
            limit = app.config["MAX_CONTENT_LENGTH"] / 2**20
            message = (
                f"the upload is larger than this server's limit of {limit:.0f} MB; "
                "send a smaller file (or a JPEG instead of an uncompressed TIFF)"
            )
        elif status in _MESSAGES:
            message = _MESSAGES[status].format(method=request.method)
        else:
            message = (e.description or e.name).strip()
        return error_response(status, message)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "something went wrong on the server; please try again")
