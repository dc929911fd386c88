"""The statistics of people's ratings, for whoever holds the ADMIN_TOKEN.

Browsers log in once with a form (a server-side session, ended by logging out or after
ADMIN_SESSION_TTL); scripts send `Authorization: Bearer <token>` (wrong ones are rate limited
like the form's). Without a configured token the pages say how to set one.

Blind ratings (the page: names hidden until judged) and named ones (the API: the caller chose
the model; a page rating changed after the names were shown, or by a client who knew the names
for that photo) are counted apart, in two tables and under two keys of stats.json; only the
blind ones compare models fairly. Every figure says how many distinct raters are behind it.
The CSV has `blind` (as given), `counted_blind` (as counted), the rater's and client's digests.
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
    url_for,
)

from pix2color.web.errors import WebError, error_response, wants_json
from pix2color.web.jobs import current_service
from pix2color.web.security import (
    ADMIN_DISABLED,
    LoginRequired,
    admin_required,
    admin_token,
    csrf_required,
    is_admin,
    log_in_admin,
    log_out_admin,
    rate_limited,
    token_matches,
)
from pix2color.web.stats import summarize
from pix2color.web.store import KINDS, RATING_COLUMNS

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _login_page(status: int, error: str | None = None) -> Response:
    html = render_template("admin_login.html", error=error, enabled=bool(admin_token()))
    return Response(html, status=status, mimetype="text/html")


@bp.errorhandler(LoginRequired)
def _login_required(e: LoginRequired) -> Response:
    """Scripts get the JSON refusal, people the login form."""
    return error_response(e.status, e.message) if wants_json() else _login_page(e.status)


@bp.get("")
def login_form():
    if admin_token() and is_admin():
        return redirect(url_for("admin.stats"))
    return _login_page(200 if admin_token() else 403, None if admin_token() else ADMIN_DISABLED)


@bp.post("/login")
@rate_limited("login")
@csrf_required
def login():
    if not admin_token():
        raise WebError(403, ADMIN_DISABLED)
    if not token_matches(request.form.get("token", "")):
        message = "that token is not right; check the server's configuration"
        if wants_json():
            raise WebError(403, message)
        return _login_page(403, message)
    log_in_admin()
    return redirect(url_for("admin.stats"), code=303)


@bp.post("/logout")
@csrf_required
def logout():
    log_out_admin()
    return redirect(url_for("views.index"), code=303)


def _rows() -> dict[str, list[dict]]:
    """The statistics rows of each kind of rating: blind, named."""
    svc = current_service()
    return {kind: summarize(svc.store.model_stats(kind), svc.engine.names) for kind in KINDS}


@bp.get("/stats")
@admin_required
def stats():
    tables = _rows()
    totals = {
        kind: dict(
            scores=sum(r["n"] for r in rows),
            comparisons=sum(r["wins"] for r in rows),  # one winner per comparison
        )
        for kind, rows in tables.items()
    }
    return render_template("stats.html", tables=tables, totals=totals)


@bp.get("/stats.json")
@admin_required
def stats_json():
    tables = _rows()
    return jsonify(
        blind=tables["blind"],
        named=tables["named"],
        about={
            "blind": "page ratings: the model names were hidden until the person had judged; "
            "these compare the models",
            "named": "ratings by someone who knew the model names: API ratings, page ratings "
            "changed after the names were shown, and page ratings of a photo whose names the "
            "client had from the API or another comparison; counted apart",
            "mos": "the mean over raters (client addresses) of each rater's mean score; ci is "
            "its 95% interval over the raters; n counts ratings, raters the distinct raters "
            "behind mos, comparison_raters those behind wins",
        },
    )


def _iso(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


@bp.get("/ratings.csv")
@admin_required
def ratings_csv():
    store = current_service().store

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
