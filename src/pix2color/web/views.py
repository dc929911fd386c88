"""The page people use: upload, compare, rate, re-run at another size, colour points, download.

Every action is a real form (it works without JavaScript: the server answers with a redirect to
the photo's page); `static/app.js` sends the same forms with fetch and `Accept:
application/json`, and puts the returned card into the page.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from typing import Any

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)

from pix2color.web import points as web_points
from pix2color.web.downloads import OUTPUT_FORMATS, download_name, parse_format
from pix2color.web.errors import WebError, wants_json
from pix2color.web.instance_files import thumb_name
from pix2color.web.jobs import REFERENCE_FIELD, current_service, reference_name
from pix2color.web.security import (
    adopt_page_owner,
    client_digest,
    csrf_required,
    new_page_owner,
    owns,
    page_owner,
    rate_limited,
)
from pix2color.web.store import check_score
from pix2color.web.uploads import pixel_limit

bp = Blueprint("views", __name__)

SIZE_CHOICES = (128, 192, 256, 320, 384, 512, 768, 1024)


def _gone() -> WebError:
    ttl = current_service().settings.file_ttl / 60
    return WebError(
        404,
        f"this photo is not here any more (photos are kept for {ttl:.0f} minutes), or the link "
        "is wrong; upload it again to colour it",
    )


def _job(job_id: str) -> dict[str, Any]:
    job = current_service().store.get_job(job_id)
    if job is None:
        raise _gone()
    return job


def _own_job(job_id: str, action: str) -> dict[str, Any]:
    """A job this browser session sent (403 for anyone else's: only its sender may judge it)."""
    job = _job(job_id)
    if not owns(job, page_owner(create=False) or ""):
        raise WebError(
            403,
            f"only the person who uploaded this photo can {action} it, in the browser it was "
            "uploaded from; upload your own photo to take part",
        )
    return job


def card(job: dict[str, Any]) -> dict[str, Any]:
    """What a photo's card shows; model names stay hidden until the person has judged."""
    results = []
    for r in job["results"]:
        rating = job["ratings"].get(r["model"]) or {}
        results.append(
            dict(
                id=r["id"],
                label=r["label"],
                model=r["model"],
                score=rating.get("score"),
                best=rating.get("best") == 1,
                seconds=r["seconds"],
                points=web_points.as_json(web_points.loads(r.get("points")))["points"],
                file=r.get("file"),
            )
        )
    job = dict(job, reference_name=reference_name(job))  # "coloured like beach.jpg"
    reveal = job.get("revealed", False)  # judged: one picked, or every one scored
    return dict(
        job=job,
        results=results,
        compare=len(results) > 1,
        reveal=reveal,
        sizes=sorted({*SIZE_CHOICES, job["size"]}),
        expires_in=max(0, round((job["expires_at"] - time.time()) / 60)),
    )


def _job_response(job: dict[str, Any], status: int = 201):
    url = url_for("views.job_page", job_id=job["id"])
    if wants_json():
        html = render_template("_card.html", **card(job))
        return jsonify(job=job["id"], url=url, html=html), status
    return redirect(url, code=303)


# ---------------------------------------------------------------- pages
@bp.get("/")
def index():
    svc = current_service()
    settings, names = svc.settings, svc.engine.names
    owner = page_owner(create=False)
    ids = svc.store.jobs_of(owner, limit=settings.max_files_per_zip) if owner else []
    jobs = [job for job in map(svc.store.get_job, ids) if job is not None]
    return render_template(
        "index.html",
        cards=[card(job) for job in jobs],  # this session's photos, newest first
        n_models=len(names),
        compare_models=min(len(names), settings.compare_models),
        sizes=SIZE_CHOICES,
        default_size=settings.default_size,
        max_mb=settings.max_bytes / 2**20,
        pixel_limit=pixel_limit(settings.max_pixels),
        ttl_minutes=round(settings.file_ttl / 60),
    )


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    return render_template("job.html", **card(_job(job_id)))


# ---------------------------------------------------------------- actions
@bp.post("/jobs")
@rate_limited("colorize")
@csrf_required
def create_job():
    svc = current_service()
    size = svc.settings.size(request.form.get("size"))
    models = svc.compared_models()
    secret, owner = new_page_owner()  # never the cookie's: it may have been planted (fixation)
    done = svc.colorize(
        request.files.get("image"), size=size, models=models, keep=True, owner=owner,
        reference=request.files.get(REFERENCE_FIELD),
    )  # fmt: skip
    previous = adopt_page_owner(secret)  # only once it worked: a refusal changes nothing
    if previous:
        svc.store.hand_over(previous, owner)  # this session's earlier photos stay its own
    return _job_response(done.job)


@bp.post("/jobs/<job_id>/rerun")
@rate_limited("colorize")
@csrf_required
def rerun(job_id: str):
    job = _own_job(job_id, "re-run")
    svc = current_service()
    return _job_response(svc.rerun(job, svc.settings.size(request.form.get("size"))))


@bp.post("/jobs/<job_id>/rate")
@rate_limited("rate")
@csrf_required
def rate(job_id: str):
    job = _own_job(job_id, "rate")
    by_id = {r["id"]: r for r in job["results"]}
    store = current_service().store
    if request.form.get("best"):
        winner = by_id.get(request.form["best"])
        if winner is None:
            raise WebError(400, "that result is not part of this photo; reload the page")
        store.choose_best(job, winner["model"], client=client_digest())
        saved = f"Saved: {winner['label']} is the best."
    else:
        result = by_id.get(request.form.get("result", ""))
        if result is None:
            raise WebError(400, "that result is not part of this photo; reload the page")
        sent = request.form.get("score", "")[:20]
        score = check_score(int(sent) if sent.isascii() and sent.isdigit() else sent)
        store.rate(job, result["model"], score=score, client=client_digest())
        saved = f"Saved: {score} star{'s' if score != 1 else ''} for {result['label']}."
    view = card(_job(job_id))
    if not wants_json():
        return redirect(url_for("views.job_page", job_id=job_id), code=303)
    return jsonify(
        message=saved,
        best=next((r["label"] for r in view["results"] if r["best"]), None),
        reveal={r["label"]: r["model"] for r in view["results"]} if view["reveal"] else None,
    )


@bp.post("/results/<result_id>/points")
@rate_limited("recolor")
@csrf_required
def set_points(result_id: str):
    """Re-colour one result with the colour points in the form field `points` (the CLI's JSON;
    empty or {"points": []}: the automatic colour again) and keep them with the result."""
    svc = current_service()
    result = _result(result_id)
    job = _own_job(result["job_id"], "add colour points to")
    points = web_points.parse_field(request.form.get("points"), svc.settings.max_points)
    seconds = svc.recolor(job, result, points)
    if not wants_json():
        return redirect(url_for("views.job_page", job_id=job["id"]), code=303)
    version = time.time_ns() // 1_000_000  # a new address: the browser fetches the new image
    return jsonify(
        result=result_id,
        label=result["label"],  # never the model: the comparison may still be blind
        points=web_points.as_json(points or [])["points"],
        thumb=url_for("views.result_thumb", result_id=result_id, v=version),
        image=url_for("views.result_image", result_id=result_id, v=version),
        seconds={k: round(v, 4) for k, v in seconds.items()},
    )


@bp.get("/jobs/<job_id>/suggest")
@rate_limited("recolor")
@csrf_required
def suggest(job_id: str):
    """The likely colours at the spot `?x=..&y=..` (the photo's pixels; `k`: how many, 3) where
    a person drops a colour point: JSON, from the suggestions model (web/suggestions.py)."""
    job = _own_job(job_id, "ask for colour suggestions on")
    return jsonify(job=job["id"], **current_service().suggest(job, request.args))


@bp.get("/results/<result_id>/points.json")
def points_json(result_id: str):
    """A result's colour points as the file `pix2color colorize --hints` reads."""
    r = _result(result_id)
    label = r["label"] if r["siblings"] > 1 else None
    name = download_name(r["filename"], label, "json").replace("-colorized", "-points")
    body = json.dumps(web_points.as_json(web_points.loads(r["points"])), indent=1)
    return send_file(
        io.BytesIO(body.encode()), mimetype="application/json", as_attachment=True,
        download_name=name,
    )  # fmt: skip


# ---------------------------------------------------------------- files
def _send(name: str | None, mimetype: str, **kw: Any) -> Response:
    """A stored image; its Cache-Control (private, no-store) comes from add_security_headers."""
    if not name:
        raise WebError(404, "this photo has no stored image (it was coloured through the API)")
    return send_from_directory(current_service().files, name, mimetype=mimetype, **kw)


@bp.get("/jobs/<job_id>/original")
def original(job_id: str):
    job = _job(job_id)
    view = job["view"] or ""
    return _send(view, "image/png" if view.endswith(".png") else "image/jpeg")


def _send_thumb(name: str | None, full_mimetype: str) -> Response:
    """An image's thumbnail (what the page shows), or the image itself where it has none."""
    thumb = thumb_name(name) if name else None
    if thumb and (current_service().files / thumb).is_file():
        return _send(thumb, "image/webp")
    return _send(name, full_mimetype)


@bp.get("/jobs/<job_id>/original/thumb")
def original_thumb(job_id: str):
    view = _job(job_id)["view"] or ""
    return _send_thumb(view, "image/png" if view.endswith(".png") else "image/jpeg")


def _result(result_id: str) -> dict[str, Any]:
    result = current_service().store.get_result(result_id)
    if result is None:
        raise _gone()
    return result


@bp.get("/results/<result_id>/image")
def result_image(result_id: str):
    r = _result(result_id)
    return _send(r["file"], "image/png")


@bp.get("/results/<result_id>/thumb")
def result_thumb(result_id: str):
    return _send_thumb(_result(result_id)["file"], "image/png")


@bp.get("/results/<result_id>/download")
def download(result_id: str):
    r = _result(result_id)
    fmt = parse_format(request.args.get("format", "png"))
    _, ext, mime, _ = OUTPUT_FORMATS[fmt]
    label = r["label"] if r["siblings"] > 1 else None
    name = download_name(r["filename"], label, ext)
    if not r["file"]:
        raise WebError(404, "this result has no stored image (it was coloured through the API)")
    path = current_service().encoded(r, fmt)  # a re-encoding takes a slot, once per format
    return send_file(path, mimetype=mime, as_attachment=True, download_name=name)


@bp.get("/download")
def download_all():
    """Every result of the given jobs (`?jobs=id,id`) in one zip."""
    fmt = parse_format(request.args.get("format", "png"))
    ids = [j for j in request.args.get("jobs", "").split(",") if j]
    svc = current_service()
    ids = ids[: svc.settings.max_files_per_zip]
    store, files = svc.store, svc.files
    _, ext, _, _ = OUTPUT_FORMATS[fmt]
    entries: list[tuple[str, Any]] = []
    used: set[str] = set()
    for job_id in dict.fromkeys(ids):
        job = store.get_job(job_id)
        if job is None:
            continue
        for r in job["results"]:
            if not r["file"] or not (files / r["file"]).is_file():
                continue
            label = r["label"] if len(job["results"]) > 1 else None
            name = download_name(job["filename"], label, ext)
            stem, n = name.rsplit(".", 1)[0], 2
            while name in used:  # two photos with one name: family.jpg, family.jpg
                name, n = f"{stem} ({n}).{ext}", n + 1
            used.add(name)
            entries.append((name, dict(r, width=job["width"], height=job["height"])))
    if not entries:
        raise WebError(404, "none of these photos is here any more; upload them again")
    out = tempfile.SpooledTemporaryFile(max_size=64 * 2**20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:  # PNG/JPEG: packed
        for name, result in entries:
            zf.write(svc.encoded(result, fmt), name)  # kept encodings, made in slots
    out.seek(0)
    return send_file(
        out,
        mimetype="application/zip",
        as_attachment=True,
        download_name="pix2color-colorized.zip",
    )
