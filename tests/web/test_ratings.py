"""Ratings that cannot be stuffed: only a photo's sender rates it, once per result; the API's
named ratings are counted apart from the page's blind ones; rates are capped per client; the
hidden names never leak; an older database is migrated without losing a rating."""

import sqlite3
import time

import pytest

from pix2color.web.security import RateLimiter
from pix2color.web.store import Store, owner_digest
from tests.web.conftest import ADMIN_TOKEN, csrf, photo_bytes, result_ids, upload

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def page_job(client):
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    r = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json["job"], result_ids(r.json["html"]), headers


def api_job(client, model="alpha", photo="astronaut", **environ):
    r = client.post(
        "/api/v1/colorize",
        data={"image": upload(photo_bytes(name=photo)), "model": model, "size": "32"},
        environ_base=environ,
    )
    assert r.status_code == 200, r.json
    return r.headers["X-Job-Id"], r.headers["X-Rating-Token"]


def rate_api(client, job, token, score=5, **more):
    return client.post("/api/v1/ratings", json={"job": job, "token": token, "score": score, **more})


def mos(app, kind):
    stats = app.extensions["pix2color"].store.model_stats(kind)
    return {m: (s["n"], s["total"] / s["n"] if s["n"] else None) for m, s in stats.items()}


def test_only_the_sender_s_session_rates_or_reruns_a_page_photo(app):
    owner, stranger = app.test_client(), app.test_client()
    job, (a, b), _ = page_job(owner)
    headers = {"X-CSRF-Token": csrf(stranger), "Accept": "application/json"}
    for url, data in (
        (f"/jobs/{job}/rate", {"result": a, "score": "1"}),
        (f"/jobs/{job}/rate", {"best": b}),
        (f"/jobs/{job}/rerun", {"size": "128"}),
    ):
        r = stranger.post(url, data=data, headers=headers)
        assert r.status_code == 403 and "only the person who uploaded" in r.json["error"]
        assert "alpha" not in r.json["error"] and "beta" not in r.json["error"]
    assert mos(app, None) == {}


def test_the_api_cannot_rate_a_page_photo_even_with_its_session_secret(app, client):
    job, _, _ = page_job(client)
    with client.session_transaction() as session:
        secret = session["owner"]  # a signed cookie is readable by its holder
    for token in (secret, "", "guess"):
        r = rate_api(client, job, token, model="A")
        assert r.status_code == 403 and "X-Rating-Token" in r.json["error"]
        assert "alpha" not in r.json["error"] and "beta" not in r.json["error"]
    assert mos(app, None) == {}


def test_a_result_rated_60_times_counts_once(app, client):
    job, (a, b), headers = page_job(client)
    for _ in range(30):  # before the names are shown: each replaces the one before
        client.post(f"/jobs/{job}/rate", data={"result": a, "score": "5"}, headers=headers)
    for _ in range(30):  # the first shows the names; the others are one named choice
        client.post(f"/jobs/{job}/rate", data={"best": b}, headers=headers)
    api, token = api_job(client, photo="coffee")  # another photo: this one stays blind
    for _ in range(60):
        assert rate_api(client, api, token).status_code == 201
    blind, named = mos(app, "blind"), mos(app, "named")
    assert sum(n for n, _ in blind.values()) == 1 and named == {
        "alpha": (1, 5.0),
        "beta": (0, None),
    }
    stats = app.extensions["pix2color"].store.model_stats("blind")
    assert sum(s["comparisons"] for s in stats.values()) == 2  # one comparison, two results
    assert all(s["raters"] <= 1 and s["comparison_raters"] == 1 for s in stats.values())


def test_a_flood_of_named_ratings_leaves_the_blind_mos_alone(make_app):
    """The incident: 60 five-star API ratings for a model the client named moved its MOS from
    4.5 (n=2) to 4.98 (n=62). Now they are named ratings, one per result, counted apart."""
    app = make_app({"RATINGS_PER_MINUTE": 1000, "RATINGS_PER_HOUR": 1000})
    person = app.test_client()
    for score in (4, 5):  # two honest, blind ratings of alpha
        job, ids, headers = page_job(person)
        labels = app.extensions["pix2color"].store.get_job(job)["results"]
        rid = next(i for i, r in zip(ids, labels, strict=True) if r["model"] == "alpha")
        person.post(f"/jobs/{job}/rate", data={"result": rid, "score": score}, headers=headers)
    assert mos(app, "blind")["alpha"] == (2, 4.5)
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "10.6.6.6"  # another address than the person's
    for _ in range(20):
        job, token = api_job(attacker, "alpha")
        for _ in range(3):  # again and again: replaces, never adds
            assert rate_api(attacker, job, token).status_code == 201
    assert mos(app, "blind")["alpha"] == (2, 4.5)  # not moved at all
    assert mos(app, "named")["alpha"] == (20, 5.0)  # one vote per result, shown as named
    stats = attacker.get("/admin/stats.json", headers=BEARER).json
    assert {r["model"]: r["n"] for r in stats["blind"]} == {"alpha": 2, "beta": 0}
    assert {r["model"]: r["n"] for r in stats["named"]} == {"alpha": 20, "beta": 0}
    assert "hidden" in stats["about"]["blind"]


def test_ratings_are_capped_per_client_address(make_app):
    app = make_app({"RATINGS_PER_MINUTE": 5, "RATINGS_PER_HOUR": 1000})
    client = app.test_client()
    job, token = api_job(client)
    codes = [rate_api(client, job, token).status_code for _ in range(8)]
    assert codes == [201] * 5 + [429] * 3
    r = rate_api(client, job, token)
    assert "too many requests" in r.json["error"] and int(r.headers["Retry-After"]) >= 1
    other = client.post(
        "/api/v1/ratings",
        json={"job": job, "token": token, "score": 3},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 201  # another address has its own allowance


def test_the_hourly_window_caps_a_steady_trickle():
    per_minute, per_hour = RateLimiter(30, 60.0), RateLimiter(300, 3600.0)
    accepted, t = 0, 0.0
    while t < 3600:  # one rating every 2 s: always under 30 a minute
        if not per_minute.hit("a", now=t) and not per_hour.hit("a", now=t):
            accepted += 1
        t += 2.0
    assert accepted == 300


def test_defaults_and_openapi_document_the_caps_and_the_token(make_app):
    from pix2color.web import DEFAULTS

    assert (DEFAULTS["RATINGS_PER_MINUTE"], DEFAULTS["RATINGS_PER_HOUR"]) == (30, 300)
    client = make_app({"RATINGS_PER_MINUTE": 30, "RATINGS_PER_HOUR": 300}).test_client()
    spec = client.get("/api/v1/openapi.json").json
    post = spec["paths"]["/api/v1/ratings"]["post"]
    assert "X-Rating-Token" in post["description"] and "30 ratings a minute" in post["description"]
    assert "403" in post["responses"]
    assert spec["components"]["schemas"]["Rating"]["required"] == ["job", "token"]
    headers = spec["paths"]["/api/v1/colorize"]["post"]["responses"]["200"]["headers"]
    assert "X-Rating-Token" in headers
    limits = client.get("/api/v1/models").json["limits"]
    assert (limits["ratings_per_minute"], limits["ratings_per_hour"]) == (30, 300)


# ---------------------------------------------------------------- an older database
OLD_SCHEMA = """
CREATE TABLE uploads (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, stored TEXT, view TEXT,
    width INTEGER NOT NULL, height INTEGER NOT NULL, format TEXT, source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX uploads_expires ON uploads (expires_at);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    size INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE results (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    model TEXT NOT NULL, label TEXT NOT NULL, file TEXT, seconds DOUBLE PRECISION NOT NULL
);
CREATE TABLE ratings (
    id {id_column}, job_id TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL,
    size INTEGER NOT NULL, score INTEGER CHECK (score BETWEEN 1 AND 5),
    best INTEGER CHECK (best IN (0, 1)), compared INTEGER NOT NULL, source TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    UNIQUE (job_id, model)
);
CREATE INDEX ratings_model ON ratings (model);
"""
OLD_RATINGS = [  # (job, model, label, score, best, source): 2 page, 2 API
    ("j1", "alpha", "A", 4, 1, "web"),
    ("j1", "beta", "B", 2, 0, "web"),
    ("j2", "alpha", "A", 5, None, "api"),
    ("j3", "alpha", "A", 5, None, "api"),
]


def _old_database(database_url, tmp_path):
    """A database as the first schema left it: a live upload and four ratings."""
    if database_url is None:
        conn = sqlite3.connect(tmp_path / "pix2color.db")
        id_column, mark = "INTEGER PRIMARY KEY AUTOINCREMENT", "?"
    else:
        import psycopg

        conn = psycopg.connect(database_url)
        id_column, mark = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "%s"
    with conn:
        cur = conn.cursor()
        for statement in OLD_SCHEMA.format(id_column=id_column).split(";"):
            if statement.strip():
                cur.execute(statement)
        now = time.time()
        cur.execute(
            "INSERT INTO uploads VALUES ('u1', 'a.jpg', 'u1.upload', 'u1-view.jpg', 4, 3,"
            f" 'JPEG', 'web', {now}, {now + 600})"
        )
        cur.execute(f"INSERT INTO jobs VALUES ('j1', 'u1', 256, {now})")
        cur.execute("INSERT INTO results VALUES ('r1', 'j1', 'alpha', 'A', 'r1.png', 0.5)")
        for job, model, label, score, best, source in OLD_RATINGS:
            cur.execute(
                "INSERT INTO ratings (job_id, model, label, size, score, best, compared, source,"
                f" created_at, updated_at) VALUES ({', '.join([mark] * 10)})",
                [job, model, label, 256, score, best, 2, source, now, now],
            )
    conn.close()


def test_an_older_database_is_migrated_without_losing_a_rating(database_url, tmp_path):
    _old_database(database_url, tmp_path)
    store = Store.open(database_url, tmp_path)
    try:
        rows = list(store.ratings())
        assert [(r["job_id"], r["model"], r["score"], r["best"]) for r in rows] == [
            (j, m, s, b) for j, m, _, s, b, _ in OLD_RATINGS
        ]
        assert [r["blind"] for r in rows] == [1, 1, 0, 0]  # page ratings were blind
        assert all(r["rater"] is None for r in rows)
        assert [r["id"] for r in rows] == [1, 2, 3, 4]  # ids kept
        assert all(r["client"] is None and r["photo"] is None for r in rows)
        assert [r["counted_blind"] for r in rows] == [1, 1, 0, 0]

        def one(n, total, comparisons=0, wins=0, raters=1):
            return dict(n=n, total=total, total_sq=total * total // n if n else 0,
                        comparisons=comparisons, wins=wins, raters=raters,
                        comparison_raters=int(comparisons > 0), rater_total=total / n,
                        rater_total_sq=(total / n) ** 2)  # fmt: skip

        assert store.model_stats("blind") == {
            "alpha": one(1, 4, comparisons=1, wins=1),
            "beta": one(1, 2, comparisons=1),
        }
        named = store.model_stats("named")["alpha"]  # two old ratings: two raters (unknown)
        assert (named["n"], named["total"], named["raters"], named["rater_total"]) == (2, 10, 2, 10)
        job = store.get_job("j1")
        assert job is not None and job["owner"] is None  # nobody can rate an old upload
        assert [r["points"] for r in job["results"]] == [None]  # no colour points before
        assert job["reference"] is None  # no reference photo before
        store.set_points("r1", '{"points":[]}')
        assert store.get_result("r1")["points"] == '{"points":[]}'
        # new rows go in beside the old ones, and opening again changes nothing
        store.add_upload(
            dict(id="u2", filename="b.jpg", stored=None, view=None, width=4, height=3,
                 format="JPEG", source="api", created_at=time.time(),
                 expires_at=time.time() + 60, owner=owner_digest("api", "t"))
        )  # fmt: skip
    finally:
        store.close()
    again = Store.open(database_url, tmp_path)
    try:
        assert len(list(again.ratings())) == 4
        assert again.get_upload("u2")["owner"] == owner_digest("api", "t")
        # new ratings are numbered after the old ones, keyed (job, model, blind)
        again.add_job(dict(id="j9", upload_id="u2", size=64, created_at=time.time()),
                      [dict(id="r9", model="alpha", label="A", seconds=0.1)])  # fmt: skip
        job = again.get_job("j9")
        again.rate(job, "alpha", score=3, source="api", client="c")
        again.rate(job, "alpha", score=2, source="api", client="c")  # replaces
        new = [r for r in again.ratings() if r["job_id"] == "j9"]
        assert [(r["id"], r["score"], r["blind"]) for r in new] == [(5, 2, 0)]
    finally:
        again.close()


# ---------------------------------------------------------------- a planted session cookie
def test_a_planted_session_cookie_never_shows_the_victim_s_photos_to_the_attacker(app):
    """Session fixation: an attacker who has uploaded once plants its cookie in the victim's
    browser; the victim's later uploads must not appear on the attacker's page, nor be
    rateable by the attacker."""
    attacker, victim = app.test_client(), app.test_client()
    own_job, _, attacker_headers = page_job(attacker)
    planted = attacker.get_cookie("session").value
    victim.set_cookie("session", planted)  # e.g. through a sibling subdomain, or a shared PC
    victim_job, (a, b), victim_headers = page_job(victim)
    assert victim_job not in attacker.get("/").get_data(as_text=True)
    for url, data in (
        (f"/jobs/{victim_job}/rate", {"result": a, "score": "5"}),
        (f"/jobs/{victim_job}/rate", {"best": b}),
        (f"/results/{a}/points", {"points": ""}),
    ):
        r = attacker.post(url, data=data, headers=attacker_headers)
        assert r.status_code == 403, (url, r.status_code)
    assert mos(app, None) == {}
    # the victim's page lists and rates its own photo
    assert victim_job in victim.get("/").get_data(as_text=True)
    ok = victim.post(f"/jobs/{victim_job}/rate", data={"result": a, "score": "4"},
                     headers=victim_headers)  # fmt: skip
    assert ok.status_code == 200


def test_a_session_keeps_its_earlier_photos_across_uploads(client):
    first, _, headers = page_job(client)
    second, (a, _), _ = page_job(client)
    third, _, _ = page_job(client)
    page = client.get("/").get_data(as_text=True)
    assert page.index(third) < page.index(second) < page.index(first)  # newest first
    old = client.post(f"/jobs/{first}/rerun", data={"size": "128"}, headers=headers)
    assert old.status_code == 201  # still this session's to re-run and rate


def test_a_refused_upload_leaves_the_session_as_it_was(client):
    job, _, headers = page_job(client)
    before = client.get_cookie("session").value
    r = client.post("/jobs", data={"image": upload(b"not a photo\n")}, headers=headers)
    assert r.status_code == 415
    assert client.get_cookie("session").value == before
    assert job in client.get("/").get_data(as_text=True)


# ---------------------------------------------------------------- blind MOS that cannot be rigged
def _page_job_of(client, data: bytes, filename: str = "photo.png"):
    headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
    r = client.post("/jobs", data={"image": upload(data, filename)}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json["job"], result_ids(r.json["html"]), headers


def _rate(client, job, headers, **data):
    r = client.post(f"/jobs/{job}/rate", data=data, headers=headers)
    assert r.status_code == 200, r.json
    return r.json


def test_a_blind_rating_is_final_once_the_names_are_shown(app, client):
    job, (a, b), headers = page_job(client)
    _rate(client, job, headers, result=a, score="1")
    shown = _rate(client, job, headers, result=b, score="1")["reveal"]
    assert shown is not None  # both scored: the names are on the page now
    for score in ("5", "5", "4"):  # then the winner's name gets its stars changed
        _rate(client, job, headers, result=a, score=score)
    assert sum(n for n, _ in mos(app, "blind").values()) == 2
    assert {m: v for m, v in mos(app, "blind").items()} == {"alpha": (1, 1.0), "beta": (1, 1.0)}
    assert [v for v in mos(app, "named").values() if v[0]] == [(1, 4.0)]  # counted as named
    page = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert "4 stars" in page or 'value="4" checked' in page  # the card shows the latest


def test_blind_ratings_of_a_photo_the_client_had_coloured_by_name_are_not_blind(app):
    """Colourings are deterministic: a client that asks the API for each model's colouring of
    its photo can tell the blind results apart. Its blind ratings of that photo (the same
    pixels, here sent as PNG to the page and as BMP to the API) do not count as blind."""
    rigger = app.test_client()
    png, bmp = photo_bytes("PNG", name="coffee"), photo_bytes("BMP", name="coffee")
    for model in ("alpha", "beta"):
        r = rigger.post("/api/v1/colorize", data={"image": upload(bmp, "c.bmp"), "model": model})
        assert r.status_code == 200
    job, (a, b), headers = _page_job_of(rigger, png)
    _rate(rigger, job, headers, result=a, score="5")
    _rate(rigger, job, headers, best=a)
    assert all(n == 0 for n, _ in mos(app, "blind").values())
    assert sum(n for n, _ in mos(app, "named").values()) == 1
    stats = rigger.get("/admin/stats.json", headers=BEARER).json
    assert sum(r["comparisons"] for r in stats["blind"]) == 0
    assert sum(r["comparisons"] for r in stats["named"]) == 2
    # another client (address) sending the same photo to the page still rates blind
    honest = app.test_client()
    honest.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    job, (a, _), headers = _page_job_of(honest, png)
    _rate(honest, job, headers, result=a, score="3")
    assert sum(n for n, _ in mos(app, "blind").values()) == 1


def test_a_photo_judged_once_is_not_blind_again_for_that_client(app, client):
    """Uploading the same photo again (or re-running it) after the names were shown lets the
    client match the colourings: those ratings count as named."""
    job, (a, b), headers = page_job(client)
    _rate(client, job, headers, best=a)  # the names are shown
    again, (c, _), _ = page_job(client)
    _rate(client, again, headers, result=c, score="5")
    rerun = client.post(f"/jobs/{job}/rerun", data={"size": "128"}, headers=headers).json
    d = result_ids(rerun["html"])[0]
    _rate(client, rerun["job"], headers, result=d, score="4")
    blind = app.extensions["pix2color"].store.model_stats("blind")
    assert sum(s["comparisons"] for s in blind.values()) == 2  # the first job's choice
    assert sum(s["n"] for s in blind.values()) == 0
    assert sum(n for n, _ in mos(app, "named").values()) == 2


def test_the_statistics_say_how_many_raters_are_behind_each_figure(make_app):
    app = make_app()
    stuffer = app.test_client()
    for i in range(6):  # one client, six photos, always alpha 5 and beta 1
        job, ids, headers = _page_job_of(stuffer, photo_bytes(size=(100 + i, 80)))
        models = {
            r["id"]: r["model"] for r in app.extensions["pix2color"].store.get_job(job)["results"]
        }
        for rid in ids:
            _rate(stuffer, job, headers, result=rid, score="5" if models[rid] == "alpha" else "1")
    person = app.test_client()
    person.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    job, ids, headers = page_job(person)
    models = {
        r["id"]: r["model"] for r in app.extensions["pix2color"].store.get_job(job)["results"]
    }
    for rid in ids:
        _rate(person, job, headers, result=rid, score="1" if models[rid] == "alpha" else "5")
    rows = {r["model"]: r for r in person.get("/admin/stats.json", headers=BEARER).json["blind"]}
    assert (rows["alpha"]["n"], rows["alpha"]["raters"]) == (7, 2)
    assert rows["alpha"]["mos"] == 3.0 and rows["beta"]["mos"] == 3.0  # (5 + 1) / 2 each
    assert rows["alpha"]["ratings_mean"] == pytest.approx(31 / 7)  # what stuffing gave before
    html = person.get("/admin/stats", headers=BEARER).get_data(as_text=True)
    assert "Raters" in html and "data-raters>2<" in html
