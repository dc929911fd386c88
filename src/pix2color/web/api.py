"""The JSON API: colour a photo, list the models, record a rating, say whether we are ready.

Stateless for the caller: no cookies, no CSRF token (a cross-site form cannot send JSON, and
`colorize` changes nothing a person owns). Every refusal is `{"error": message, "status": code}`.

Ratings: `colorize` answers with X-Job-Id and X-Rating-Token; only that token rates that job,
so nobody rates another's colouring, nor a page upload (the page's own session rates those). The
caller chose the model, so API ratings are "named" and counted apart from the page's blind ones.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, jsonify, request, send_file

from pix2color import __version__
from pix2color.web import points as web_points
from pix2color.web.database import StoreError
from pix2color.web.downloads import OUTPUT_FORMATS, download_name, parse_format
from pix2color.web.errors import WebError
from pix2color.web.jobs import REFERENCE_FIELD, current_service
from pix2color.web.openapi import openapi_spec
from pix2color.web.schema import SCORES
from pix2color.web.security import client_digest, new_api_token, owns, rate_limited
from pix2color.web.store import check_score, owner_digest

bp = Blueprint("api", __name__)


@bp.post("/api/v1/colorize")
@rate_limited("colorize")
def colorize():
    svc = current_service()
    model = request.values.get("model") or svc.engine.default(svc.settings.default_model)
    if model not in svc.engine.colorizers:
        raise WebError(
            400,
            f"unknown model {model[:60]!r}; this server has {', '.join(svc.engine.names)} "
            "(GET /api/v1/models)",
        )
    size = svc.settings.size(request.values.get("size"))
    fmt = parse_format(request.values.get("format"))
    points = web_points.parse_field(request.values.get("points"), svc.settings.max_points)
    token, owner = new_api_token()
    done = svc.colorize(  # the answer is encoded in the colouring's slot: heavy work too
        request.files.get("image"),
        size=size,
        models=[model],
        keep=False,
        owner=owner,
        encode_as=fmt,
        points=points,
        reference=request.files.get(REFERENCE_FIELD),
    )
    # the caller now knows which model coloured this photo: its blind ratings of the same
    # photo on the page are not counted as blind
    svc.store.note_named(done.job, client_digest())
    _, ext, mime, _ = OUTPUT_FORMATS[fmt]
    assert done.encoded is not None
    response = send_file(
        io.BytesIO(done.encoded),
        mimetype=mime,
        as_attachment=True,
        download_name=download_name(done.job["filename"], None, ext),
    )
    response.headers["X-Job-Id"] = done.job["id"]
    response.headers["X-Rating-Token"] = token  # the one key to rate this job
    response.headers["X-Model"] = model
    response.headers["X-Working-Size"] = str(size)
    response.headers["X-Colour-Points"] = str(len(points or ()))
    response.headers["X-Reference-Photo"] = "yes" if done.job.get("reference") else "no"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/v1/suggest")
@rate_limited("colorize")
def suggest():
    """The likely colours at a spot (x, y) of the photo sent as `image` (JSON)."""
    svc = current_service()
    return jsonify(svc.suggest_upload(request.files.get("image"), request.values))


def _parameters(G: Any) -> int | None:
    """A torch generator's parameter count; None for a runtime without one (ONNX)."""
    params = getattr(G, "parameters", None)
    return sum(p.numel() for p in params()) if callable(params) else None


def _public_metadata(info: dict[str, Any]) -> dict[str, Any]:
    meta = info.get("metadata") or {}
    return {k: meta[k] for k in ("recipe", "epoch", "val_metrics") if k in meta}


@bp.get("/api/v1/models")
def models():
    svc = current_service()
    settings = svc.settings
    default = svc.engine.default(settings.default_model)
    return jsonify(
        models=[
            dict(
                name=name,
                default=name == default,
                parameters=_parameters(c.G),
                **_public_metadata(c.info),
            )
            for name, c in svc.engine.colorizers.items()
        ],
        default_model=default,
        size=dict(default=settings.default_size, min=settings.min_size, max=settings.max_size),
        formats=list(OUTPUT_FORMATS),
        limits=dict(
            max_bytes=settings.max_bytes,
            max_pixels=settings.max_pixels,
            colorize_per_minute=settings.colorize_per_minute,
            recolor_per_minute=settings.recolor_per_minute,
            max_points=settings.max_points,
            ratings_per_minute=settings.ratings_per_minute,
            ratings_per_hour=settings.ratings_per_hour,
        ),
    )


def _result_of(job: dict[str, Any], ref: Any, field: str) -> dict[str, Any]:
    """A job's result named by its model name or its label (A, B, ...)."""
    for r in job["results"]:
        if ref in (r["model"], r["label"]):
            return r
    # labels only: behind a label a model's name may be hidden (blind comparisons)
    labels = ", ".join(r["label"] for r in job["results"])
    raise WebError(
        400, f"{field} {str(ref)[:60]!r} is not a result of this job; its results are {labels}"
    )


NO_TOKEN = (
    "this job cannot be rated with that token: send the X-Rating-Token header that "
    "POST /api/v1/colorize answered with for this job, as the field token"
)


@bp.post("/api/v1/ratings")
@rate_limited("rate")
def ratings():
    if not request.is_json:
        raise WebError(415, "send the rating as JSON with Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WebError(400, 'the body is not a JSON object like {"job": "...", "score": 4}')
    unknown = set(data) - {"job", "token", "model", "score", "best"}
    if unknown:
        raise WebError(
            400, f"unknown field(s) {sorted(unknown)}; use job, token, model, score, best"
        )
    if "score" not in data and "best" not in data:
        raise WebError(
            400,
            f"say what to record: a score ({SCORES[0]}-{SCORES[-1]}, with model) and/or best "
            "(a model)",
        )
    job = current_service().store.get_job(str(data.get("job", "")))
    if job is None:
        raise WebError(404, "no such job (jobs can be rated until their photo expires)")
    if not owns(job, owner_digest("api", str(data.get("token", "")))):
        raise WebError(403, NO_TOKEN)
    store, saved = current_service().store, {}
    if "score" in data:
        score = check_score(data["score"])
        if "model" not in data and len(job["results"]) > 1:
            raise WebError(400, "this job has several results: say which one with model")
        ref = data.get("model", job["results"][0]["model"])
        r = _result_of(job, ref, "model")
        store.rate(job, r["model"], score=score, source="api", client=client_digest())
        saved["score"] = {"model": r["model"], "score": score}
    if "best" in data:
        r = _result_of(job, data["best"], "best")
        store.choose_best(job, r["model"], source="api", client=client_digest())
        saved["best"] = r["model"]
    return jsonify(job=job["id"], saved=saved), 201


@bp.get("/healthz")
def healthz():
    svc = current_service()
    try:
        svc.store.ping()
    except StoreError as e:
        return jsonify(status="unavailable", error=str(e)), 503
    return jsonify(
        status="ok", version=__version__, models=svc.engine.names, database=svc.store.kind
    )


@bp.get("/api/v1/openapi.json")
def openapi():
    svc = current_service()
    return jsonify(openapi_spec(svc.settings, svc.engine.names))
