"""The statistics of people's ratings, for whoever holds the ADMIN_TOKEN.

Browsers log in once with a form (the session remembers); scripts send
`Authorization: Bearer <token>`. Without a configured token the pages say how to set one.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from pix2color.web.errors import WebError, wants_json
from pix2color.web.security import admin_token, is_admin, log_in_admin, token_matches
from pix2color.web.stats import summarize
from pix2color.web.store import RATING_COLUMNS
from pix2color.web.views import enforce, require_csrf, service

bp = Blueprint("admin", __name__, url_prefix="/admin")

DISABLED = (
    "statistics are turned off: set an admin token (ADMIN_TOKEN in the instance folder's "
    "config.py, or the environment variable PIX2COLOR_WEB_ADMIN_TOKEN) and restart"
)


def _login_page(status: int, error: str | None = None):
    if wants_json():
        raise WebError(status, error or "send Authorization: Bearer <admin token>")
    html = render_template("admin_login.html", error=error, enabled=bool(admin_token()))
    return Response(html, status=status, mimetype="text/html")


def _require_admin() -> Response | None:
    if not admin_token():
        raise WebError(403, DISABLED)
    if not is_admin():
        return _login_page(401)
    return None


@bp.get("")
def login_form():
    if admin_token() and is_admin():
        return redirect(url_for("admin.stats"))
    return _login_page(200 if admin_token() else 403, None if admin_token() else DISABLED)


@bp.post("/login")
def login():
    enforce("login")
    require_csrf()
    if not admin_token():
        raise WebError(403, DISABLED)
    if not token_matches(request.form.get("token", "")):
        return _login_page(403, "that token is not right; check the server's configuration")
    log_in_admin()
    return redirect(url_for("admin.stats"), code=303)


@bp.post("/logout")
def logout():
    require_csrf()
    session.pop("admin", None)
    return redirect(url_for("views.index"), code=303)


def _rows() -> list[dict]:
    svc = service()
    return summarize(svc.store.model_stats(), svc.engine.names)


@bp.get("/stats")
def stats():
    refused = _require_admin()
    if refused is not None:
        return refused
    rows = _rows()
    return render_template(
        "stats.html",
        rows=rows,
        total_scores=sum(r["n"] for r in rows),
        total_comparisons=sum(r["wins"] for r in rows),  # one winner per comparison
    )


@bp.get("/stats.json")
def stats_json():
    refused = _require_admin()
    if refused is not None:
        return refused
    return jsonify(models=_rows())


def _iso(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


@bp.get("/ratings.csv")
def ratings_csv():
    refused = _require_admin()
    if refused is not None:
        return refused
    store = service().store

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(RATING_COLUMNS)
        for row in store.ratings():
            row = dict(row, created_at=_iso(row["created_at"]), updated_at=_iso(row["updated_at"]))
            writer.writerow(["" if row[c] is None else row[c] for c in RATING_COLUMNS])
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    response = Response(lines(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="ratings-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
