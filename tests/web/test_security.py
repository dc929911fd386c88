"""Headers, rate limits, the busy answer, never debug, and the admin token."""

import ast
import time
from pathlib import Path

import pytest

import pix2color.web
from pix2color.web.security import RateLimiter
from tests.web.conftest import ADMIN_TOKEN, csrf, photo_bytes, upload


@pytest.mark.parametrize("path", ["/", "/api/v1/models", "/static/app.js", "/nope"])
def test_security_headers_on_every_response(client, path):
    h = client.get(path).headers
    csp = h["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"


def test_session_cookie_is_httponly_and_samesite(client):
    cookie = client.get("/").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _cookie_flags(response) -> set[str]:
    return {part.strip().split("=")[0] for part in response.headers["Set-Cookie"].split(";")[1:]}


def test_session_cookie_is_secure_over_https_only(app):
    assert "Secure" not in _cookie_flags(app.test_client().get("/"))
    https = app.test_client().get("/", base_url="https://localhost")
    assert "Secure" in _cookie_flags(https)


def test_session_cookie_is_secure_behind_a_trusted_https_proxy_only(make_app):
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    # no proxy trusted: anybody can send the header, so it changes nothing
    untrusting = make_app().test_client()
    assert "Secure" not in _cookie_flags(untrusting.get("/", headers=https))
    trusting = make_app({"TRUSTED_PROXIES": 1})
    assert "Secure" in _cookie_flags(trusting.test_client().get("/", headers=https))
    plain = {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.7"}
    over_http = make_app({"TRUSTED_PROXIES": 1}).test_client().get("/", headers=plain)
    assert "Secure" not in _cookie_flags(over_http)
    # the admin's login (the same session cookie) is Secure there too
    admin = trusting.test_client()
    token = csrf(admin)
    r = admin.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": token}, headers=https)
    assert r.status_code in (302, 303) and "Secure" in _cookie_flags(r)


def test_people_s_photos_are_never_cached(client, page_job):
    job, results, headers = page_job
    urls = [
        "/",
        f"/jobs/{job}",
        f"/jobs/{job}/original",
        f"/results/{results[0]}/image",
        f"/results/{results[0]}/download",
        f"/results/{results[0]}/download?format=jpeg",
        f"/download?jobs={job}",
        f"/download?jobs={job}&format=jpeg",
    ]
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "private, no-store", url
        assert "Expires" not in r.headers, url
    api = client.post("/api/v1/colorize", data={"image": upload(photo_bytes())})
    assert api.status_code == 200 and api.headers["Cache-Control"] == "private, no-store"
    missing = client.get("/results/nope/image")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "private, no-store"
    # the page's own assets stay cacheable
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")


def test_never_debug(make_app):
    app = make_app({"DEBUG": True})
    assert app.debug is False and app.config["DEBUG"] is False


def test_rate_limit_answers_429_per_client(make_app):
    client = make_app({"COLORIZE_PER_MINUTE": 2}).test_client()

    def post(addr):
        return client.post(
            "/api/v1/colorize",
            data={"image": upload(photo_bytes(size=(32, 32)))},
            environ_base={"REMOTE_ADDR": addr},
        )

    assert [post("10.0.0.1").status_code for _ in range(2)] == [200, 200]
    r = post("10.0.0.1")
    assert r.status_code == 429 and "too many requests from your address" in r.json["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert post("10.0.0.2").status_code == 200  # another client is not held back


def test_rate_limiter_window_slides():
    limiter = RateLimiter(2, window=10.0)
    assert [limiter.hit("a", now=t) for t in (0.0, 1.0)] == [0.0, 0.0]
    assert limiter.hit("a", now=5.0) == pytest.approx(5.0)  # the first hit leaves at t=10
    assert limiter.hit("a", now=10.5) == 0.0
    assert limiter.hit("b", now=5.0) == 0.0


def test_busy_server_answers_503_then_recovers(app, client):
    engine = app.extensions["pix2color"].engine
    for _ in range(engine.n_slots):  # every inference slot is taken by other photos
        assert engine.slots.acquire(timeout=1)
    try:
        r = client.post("/api/v1/colorize", data={"image": upload(photo_bytes())})
        assert r.status_code == 503 and "the server is busy" in r.json["error"]
        assert r.headers["Retry-After"] == "5"
        headers = {"X-CSRF-Token": csrf(client), "Accept": "application/json"}
        page = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers)
        assert page.status_code == 503
    finally:
        for _ in range(engine.n_slots):
            engine.slots.release()
    assert client.post("/api/v1/colorize", data={"image": upload(photo_bytes())}).status_code == 200
    assert list(app.extensions["pix2color"].files.iterdir()) == []  # refused uploads not kept


# ---------------------------------------------------------------- admin
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("path", ["/admin/stats", "/admin/stats.json", "/admin/ratings.csv"])
def test_statistics_need_the_admin_token(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers=BEARER).status_code == 200


def test_admin_login_form(client):
    assert "Admin token" in client.get("/admin").get_data(as_text=True)
    token = csrf(client)
    wrong = client.post("/admin/login", data={"token": "guess", "csrf_token": token})
    assert wrong.status_code == 403 and "token is not right" in wrong.get_data(as_text=True)
    no_csrf = client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert no_csrf.status_code == 400
    ok = client.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": token})
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/admin/stats")
    assert client.get("/admin/stats").status_code == 200
    assert client.get("/admin/ratings.csv").status_code == 200
    client.post("/admin/logout", data={"csrf_token": token})
    assert client.get("/admin/stats").status_code == 401


def test_statistics_off_without_a_token(make_app):
    client = make_app({"ADMIN_TOKEN": None}).test_client()
    r = client.get("/admin/stats.json", headers={"Authorization": "Bearer "})
    assert r.status_code == 403 and "PIX2COLOR_WEB_ADMIN_TOKEN" in r.json["error"]
    assert "are turned off: set an admin token" in client.get("/admin").get_data(as_text=True)


def test_statistics_page_and_csv_show_the_ratings(client, page_job):
    job, (a, b), headers = page_job
    client.post(f"/jobs/{job}/rate", data={"result": a, "score": "5"}, headers=headers)
    client.post(f"/jobs/{job}/rate", data={"best": a}, headers=headers)  # names shown
    client.post(f"/jobs/{job}/rate", data={"result": b, "score": "2"}, headers=headers)  # named
    stats = client.get("/admin/stats.json", headers=BEARER).json
    rows = {r["model"]: r for r in stats["blind"]}
    winner = next(m for m, r in rows.items() if r["wins"] == 1)
    assert rows[winner]["mos"] == 5 and rows[winner]["win_rate"] == 1.0
    assert rows[winner]["raters"] == 1 and rows[winner]["comparison_raters"] == 1
    assert sum(r["comparisons"] for r in rows.values()) == 2
    assert [(r["n"], r["mos"]) for r in stats["named"] if r["n"]] == [(1, 2.0)]
    html = client.get("/admin/stats", headers=BEARER).get_data(as_text=True)
    assert "1 star rating and\n    1 blind comparison" in html and "5.00" in html
    assert "Named ratings (the API" in html and "1 star rating so far" in html
    assert "Raters" in html and "data-raters>1<" in html
    csv = client.get("/admin/ratings.csv", headers=BEARER)
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert lines[0] == (
        "id,created_at,updated_at,job_id,model,label,size,score,best,compared,source,blind,rater,"
        "client,photo,counted_blind"
    )
    cells = [line.split(",") for line in lines[1:]]
    assert len(cells) == 3 and all(c[3] == job for c in cells)
    # the blind score and choice, then b's score as a named row (given after the names)
    assert sorted((c[7], c[8], c[11], c[15]) for c in cells) == [
        ("", "0", "1", "1"), ("2", "", "0", "0"), ("5", "1", "1", "1")
    ]  # fmt: skip
    assert len({c[13] for c in cells}) == 1 and len(cells[0][13]) == 64  # one client, keyed


def test_secret_key_is_made_once_per_instance_folder(make_app, tmp_path):
    first = make_app({"SECRET_KEY": None}).config["SECRET_KEY"]
    again = make_app({"SECRET_KEY": None}).config["SECRET_KEY"]  # a restart keeps sessions
    assert first == again and len(first) == 64
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0  # owner only


def test_blueprints_take_their_guards_from_security_not_from_each_other():
    web = Path(pix2color.web.__file__).parent
    blueprints = {"pix2color.web.views", "pix2color.web.api", "pix2color.web.admin"}
    for name in sorted(blueprints):
        tree = ast.parse((web / f"{name.rsplit('.', 1)[1]}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "pix2color.web.security" in imported, name
        assert not imported & (blueprints - {name}), f"{name} imports another blueprint"


def test_bearer_token_guesses_are_slowed_like_the_login_form(make_app):
    """100 wrong Bearer tokens were all answered 401 at full speed; now the 11th attempt a
    minute from one address is refused (429, Retry-After), the right token too, until the
    window passes; another address is not held back."""
    client = make_app().test_client()
    codes = [
        client.get("/admin/stats.json", headers={"Authorization": f"Bearer guess{i}"}).status_code
        for i in range(100)
    ]
    assert codes == [401] * 10 + [429] * 90
    r = client.get("/admin/stats.json", headers=BEARER)
    assert r.status_code == 429 and "too many admin token attempts" in r.json["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    other = client.get(
        "/admin/stats.json", headers=BEARER, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    )
    assert other.status_code == 200
    # the login form shares the allowance: a locked-out address cannot guess there either
    token = csrf(client)
    form = client.post("/admin/login", data={"token": "guess", "csrf_token": token})
    assert form.status_code == 429


def test_the_right_bearer_token_is_not_counted_against_the_address(client):
    for _ in range(30):
        assert client.get("/admin/stats.json", headers=BEARER).status_code == 200


def _login(client):
    r = client.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf(client)})
    assert r.status_code == 303
    with client.session_transaction() as session:
        return session["admin"]


def test_the_admin_cookie_holds_a_random_session_id_not_a_digest_of_the_token(app, client):
    import hashlib

    sid = _login(client)
    weak = hashlib.sha256(b"pix2color-admin:" + ADMIN_TOKEN.encode()).hexdigest()
    assert sid != weak and ADMIN_TOKEN not in sid and len(sid) >= 40
    again = app.test_client()
    assert _login(again) != sid  # a new id per login
    store = app.extensions["pix2color"].store
    with store.transaction() as cur:
        cur.execute("SELECT * FROM admin_sessions")
        rows = cur.fetchall()
    assert len(rows) == 2 and all(sid not in str(row) and weak not in str(row) for row in rows)


def test_logging_out_revokes_the_admin_session_on_the_server(app, client):
    _login(client)
    stolen = app.test_client()
    stolen.set_cookie("session", client.get_cookie("session").value)  # a copy of the cookie
    assert stolen.get("/admin/stats").status_code == 200
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    assert client.get("/admin/stats").status_code == 401
    assert stolen.get("/admin/stats").status_code == 401  # the copy is worth nothing now


def test_an_admin_session_expires_and_a_new_token_ends_it(make_app, tmp_path):
    app = make_app({"ADMIN_SESSION_TTL": 60})
    client = app.test_client()
    _login(client)
    store = app.extensions["pix2color"].store
    with store.transaction() as cur:
        cur.execute("UPDATE admin_sessions SET expires_at = expires_at - 61")
    assert client.get("/admin/stats").status_code == 401
    _login(client)
    cookie = client.get_cookie("session").value
    changed = make_app({"ADMIN_TOKEN": "another-token"}).test_client()  # restarted, new token
    changed.set_cookie("session", cookie)
    assert changed.get("/admin/stats").status_code == 401
    store.expire(now=time.time() + 10 * 3600)  # expired sessions are swept with the files
    with store.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM admin_sessions")
        assert cur.fetchone()["n"] == 0


def test_admin_sessions_are_shared_by_processes_on_one_database(make_app):
    first, second = make_app(), make_app()  # two server processes, one instance folder
    browser = first.test_client()
    _login(browser)
    other = second.test_client()
    other.set_cookie("session", browser.get_cookie("session").value)
    assert other.get("/admin/stats").status_code == 200
    browser.post("/admin/logout", data={"csrf_token": csrf(browser)})
    assert other.get("/admin/stats").status_code == 401
