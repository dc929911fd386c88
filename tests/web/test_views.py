"""The page's routes as a browser uses them: upload, compare blind, rate, re-run, download."""

import io
import os
import re
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import real_photo
from tests.web.conftest import (
    ADMIN_TOKEN,
    csrf,
    decoded,
    page_headers,
    photo_bytes,
    result_ids,
    upload,
)


def test_index_page_has_no_inline_code_and_a_csrf_token(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Drop photos here" in html
    assert re.search(r'name="csrf-token" content="[\w-]{20,}"', html)
    # the CSP allows no inline code: every script has a src, no style or on* attributes
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html)
    assert "2 models are installed" in html
    for asset in ("app.js", "style.css", "favicon.svg"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_upload_colours_with_both_models_under_hidden_labels(client, page_job):
    job, results, _ = page_job
    assert len(results) == 2
    html = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert "grandma.jpg" in html and "120 × 80 px" in html and "working size 64 px" in html
    labels = re.findall(r'data-label="([A-Z])"', html)
    assert labels == ["A", "B"]
    assert "alpha" not in html and "beta" not in html  # names hidden until judged
    for rid in results:
        img = decoded(client.get(f"/results/{rid}/image").data)
        assert img.size == (120, 80) and img.mode == "RGB"
    original = client.get(f"/jobs/{job}/original")
    assert original.mimetype == "image/jpeg" and decoded(original.data).size == (120, 80)


def test_labels_are_shuffled(client):
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    a_was = set()
    for _ in range(16):  # both orders are seen, except with probability 2**-15
        r = client.post(
            "/jobs", data={"image": upload(photo_bytes(size=(40, 30)))}, headers=headers
        )
        best = result_ids(r.json["html"])[0]
        choice = client.post(f"/jobs/{r.json['job']}/rate", data={"best": best}, headers=headers)
        a_was.add(choice.json["reveal"]["A"])
    assert a_was == {"alpha", "beta"}


def test_upload_needs_the_csrf_token(client):
    client.get("/")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = client.post(
            "/jobs",
            data={"image": upload(photo_bytes())},
            headers={**headers, "Accept": "application/json"},
        )
        assert r.status_code == 400
        assert "security token is missing or out of date; reload the page" in r.json["error"]
    job_r = client.post("/jobs/x/rate", data={"score": "5"}, headers={"Accept": "application/json"})
    assert job_r.status_code == 400 and "security token" in job_r.json["error"]


def test_form_post_without_javascript_redirects_to_the_photo_page(client):
    token = csrf(client)
    r = client.post(
        "/jobs", data={"image": upload(photo_bytes()), "csrf_token": token, "size": "96"}
    )
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "working size 96 px" in page.get_data(as_text=True)


def test_page_errors_are_json_for_fetch_and_html_for_people(client):
    token = csrf(client)
    r = client.post(
        "/jobs",
        data={"image": upload(b"<svg></svg>", "x.png")},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert r.status_code == 415 and "SVG drawing" in r.json["error"]
    r = client.post("/jobs", data={"image": upload(b"<svg></svg>", "x.png"), "csrf_token": token})
    assert r.status_code == 415 and r.mimetype == "text/html"
    assert "SVG drawing" in r.get_data(as_text=True)
    missing = client.get("/jobs/doesnotexist")
    assert missing.status_code == 404 and "kept for 10 minutes" in missing.get_data(as_text=True)


def test_rerun_at_another_size_makes_a_new_job(client, page_job):
    job, _, headers = page_job
    r = client.post(f"/jobs/{job}/rerun", data={"size": "128"}, headers=headers)
    assert r.status_code == 201
    assert r.json["job"] != job and "working size 128 px" in r.json["html"]
    bad = client.post(f"/jobs/{job}/rerun", data={"size": "4000"}, headers=headers)
    assert bad.status_code == 400 and "from 32 to 256" in bad.json["error"]


def test_rating_and_choosing_reveal_the_model_names(client, page_job):
    job, (a, b), headers = page_job
    r = client.post(f"/jobs/{job}/rate", data={"result": a, "score": "4"}, headers=headers)
    assert r.status_code == 200 and r.json["message"] == "Saved: 4 stars for A."
    assert r.json["reveal"] is None  # B not judged yet: names stay hidden
    r = client.post(f"/jobs/{job}/rate", data={"best": b}, headers=headers)
    assert r.json["best"] == "B" and set(r.json["reveal"]) == {"A", "B"}
    assert set(r.json["reveal"].values()) == {"alpha", "beta"}
    html = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert "is-best" in html and 'value="4" checked' in html
    for data, message in (
        ({"result": a, "score": "9"}, "1 to 5 stars"),
        ({"result": "other", "score": "3"}, "not part of this photo"),
        ({"best": "other"}, "not part of this photo"),
    ):
        bad = client.post(f"/jobs/{job}/rate", data=data, headers=headers)
        assert bad.status_code == 400 and message in bad.json["error"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_rating_survives_a_restart(make_app, backend, request):
    config = (
        {} if backend == "sqlite" else {"DATABASE_URL": request.getfixturevalue("postgres_url")}
    )
    client = make_app(config).test_client()
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    r = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers)
    job, (a, _) = r.json["job"], result_ids(r.json["html"])
    assert (
        client.post(
            f"/jobs/{job}/rate", data={"result": a, "score": "5"}, headers=headers
        ).status_code
        == 200
    )
    # a new app on the same instance folder and database: a restarted server
    again = make_app(config).test_client()
    stats = again.get("/admin/stats.json", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert sum(row["n"] for row in stats.json["blind"]) == 1
    assert again.get(f"/jobs/{job}").status_code == 200  # and the photo is still there


def test_downloads_are_full_size_with_the_original_name(client, page_job):
    job, (a, _), _ = page_job
    png = client.get(f"/results/{a}/download?format=png")
    assert png.headers["Content-Disposition"] == "attachment; filename=grandma-colorized-A.png"
    assert decoded(png.data).size == (120, 80)
    jpg = client.get(f"/results/{a}/download?format=jpeg")
    assert jpg.headers["Content-Disposition"].endswith("grandma-colorized-A.jpg")
    assert decoded(jpg.data).format == "JPEG" and decoded(jpg.data).size == (120, 80)
    assert client.get(f"/results/{a}/download?format=exe").status_code == 400


def test_single_model_download_name_and_non_ascii_names(make_app, colorizers):
    client = make_app(models={"alpha": colorizers["alpha"]}).test_client()
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    r = client.post(
        "/jobs", data={"image": upload(photo_bytes(), "../../할머니 1950.jpg")}, headers=headers
    )
    (rid,) = result_ids(r.json["html"])
    assert "Best" not in r.json["html"]  # nothing to compare
    d = client.get(f"/results/{rid}/download")
    assert "%ED%95%A0%EB%A8%B8%EB%8B%88%201950-colorized.png" in d.headers["Content-Disposition"]


def test_download_all_as_zip(client):
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    jobs = [
        client.post(
            "/jobs",
            data={"image": upload(photo_bytes(size=(60 + i, 40)), "a.jpg")},
            headers=headers,
        ).json["job"]
        for i in range(2)
    ]
    r = client.get(f"/download?format=jpeg&jobs={','.join(jobs)},expired-one")
    assert r.headers["Content-Disposition"] == "attachment; filename=pix2color-colorized.zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        names = sorted(zf.namelist())
        assert names == [
            "a-colorized-A (2).jpg",
            "a-colorized-A.jpg",
            "a-colorized-B (2).jpg",
            "a-colorized-B.jpg",
        ]
        sizes = {Image.open(io.BytesIO(zf.read(n))).size for n in names}
    assert sizes == {(60, 40), (61, 40)}
    assert client.get("/download?jobs=nothing").status_code == 404


def test_transparent_photo_keeps_alpha_in_png_download(client):
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    rgba = Image.fromarray(real_photo("astronaut")).resize((50, 50)).convert("RGBA")
    rgba.putalpha(100)
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    r = client.post("/jobs", data={"image": upload(buf.getvalue(), "cut-out.png")}, headers=headers)
    job = r.json["job"]
    rid = result_ids(r.json["html"])[0]
    out = decoded(client.get(f"/results/{rid}/download").data)
    assert out.mode == "RGBA" and (np.asarray(out)[..., 3] == 100).all()
    assert client.get(f"/jobs/{job}/original").mimetype == "image/png"  # the view keeps it too


def test_files_expire_but_ratings_stay(app, client, page_job):
    job, (a, _), headers = page_job
    client.post(f"/jobs/{job}/rate", data={"result": a, "score": "3"}, headers=headers)
    files = app.extensions["pix2color"].files
    kept = sorted(p.name for p in files.iterdir())
    # the upload, its view copy, two results, their 3 thumbnails, the results' working colour
    assert len(kept) == 9
    stray = files / "left-by-a-crash.png"
    stray.write_bytes(b"x")
    os.utime(stray, (time.time() - 3600, time.time() - 3600))
    service = app.extensions["pix2color"]
    assert service.cleanup(now=time.time() + 60) == 1  # only the stray file is old enough
    assert client.get(f"/jobs/{job}").status_code == 200
    assert service.cleanup(now=time.time() + 601) == 9  # past FILE_TTL (600 s)
    assert list(files.iterdir()) == []
    gone = client.get(f"/jobs/{job}", headers={"Accept": "application/json"})
    assert gone.status_code == 404 and "kept for 10 minutes" in gone.json["error"]
    assert client.get(f"/results/{a}/image").status_code == 404
    assert sum(s["n"] for s in service.store.model_stats().values()) == 1


def test_cleanup_runs_on_requests(app, client, page_job, monkeypatch):
    service = app.extensions["pix2color"]
    calls = []
    monkeypatch.setattr(service, "cleanup", lambda now=None: calls.append(now))
    service._last_cleanup = 0.0
    client.get("/")
    client.get("/")  # within CLEANUP_INTERVAL: not again
    assert len(calls) == 1


def test_the_home_page_lists_this_session_s_photos_after_a_reload(app, client):
    headers = page_headers(client)
    first = client.post("/jobs", data={"image": upload(photo_bytes(), "one.jpg")}, headers=headers)
    second = client.post("/jobs", data={"image": upload(photo_bytes(), "two.jpg")}, headers=headers)
    html = client.get("/").get_data(as_text=True)  # a reload
    listed = re.findall(r'<article class="card" id="job-([^"]+)"', html)
    assert listed == [second.json["job"], first.json["job"]]  # newest first
    assert 'id="toolbar" data-zip-url="/download">' in html  # shown, not hidden
    stranger = app.test_client()
    other = stranger.get("/").get_data(as_text=True)
    assert '<article class="card"' not in other  # another session sees none of them
    assert 'id="toolbar" data-zip-url="/download" hidden>' in other


def test_a_rerun_is_kept_beside_the_first_and_both_go_in_the_zip(client, page_job):
    job, _, headers = page_job
    again = client.post(f"/jobs/{job}/rerun", data={"size": "128"}, headers=headers).json["job"]
    html = client.get("/").get_data(as_text=True)
    assert re.findall(r'<article class="card" id="job-([^"]+)"', html) == [again, job]
    r = client.get(f"/download?format=png&jobs={again},{job}")
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        assert len(zf.namelist()) == 4  # two results of each


def test_the_page_shows_thumbnails_and_full_size_only_when_asked(client):
    from pix2color.web.instance_files import THUMB_SIDE

    headers = page_headers(client)
    big = photo_bytes(size=(1600, 600))  # under the tests' 1 MP limit
    r = client.post("/jobs", data={"image": upload(big, "big.jpg")}, headers=headers)
    job, html = r.json["job"], r.json["html"]
    rid = result_ids(html)[0]
    assert (
        f'src="/jobs/{job}/original/thumb"' in html and f'data-full="/jobs/{job}/original"' in html
    )
    assert f'src="/results/{rid}/thumb"' in html and f'data-full="/results/{rid}/image"' in html
    assert 'width="1600" height="600"' in html  # the page keeps the photo's proportions
    for url in (f"/jobs/{job}/original/thumb", f"/results/{rid}/thumb"):
        thumb = client.get(url)
        assert (
            thumb.mimetype == "image/webp" and thumb.headers["Cache-Control"] == "private, no-store"
        )
        assert decoded(thumb.data).size == (THUMB_SIDE, THUMB_SIDE * 600 // 1600)
    assert decoded(client.get(f"/results/{rid}/image").data).size == (1600, 600)


def test_a_photo_without_a_thumbnail_shows_the_full_image(app, client, page_job):
    _, (a, _), _ = page_job
    files = app.extensions["pix2color"].files
    (files / f"{a}-thumb.webp").unlink()  # coloured before thumbnails existed
    r = client.get(f"/results/{a}/thumb")
    assert r.status_code == 200 and r.mimetype == "image/png"
