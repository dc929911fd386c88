"""Security for a service that strangers upload files to: headers, and the guards on views.

- Headers on every response: a Content-Security-Policy that allows only this site's own
  scripts and styles (no inline code anywhere), nosniff, no framing, no referrer; and
  `Cache-Control: private, no-store` on everything but the static assets, since pages, results,
  uploads and downloads are people's photos (no shared or browser cache keeps a copy).
- Guards, as decorators under a route: `@rate_limited("colorize")`, `@csrf_required`,
  `@admin_required`. Stacked, the one written first runs first.
- CSRF: the page's forms and fetches carry a per-session token (a hidden field or the
  X-CSRF-Token header), compared in constant time. The JSON API needs none: it uses no cookies,
  and a cross-site form cannot send `application/json`.
- Rate limits: sliding windows per client address and per kind of action, in memory (so per
  server process: N processes allow N times the rate). Ratings have two: RATINGS_PER_MINUTE
  for bursts and RATINGS_PER_HOUR for a steady trickle.
- Owners: only the sender of a photo may rate its results or re-run it. The page's session
  holds a random owner secret (`page_owner`), a new one from each upload on (`new_page_owner`:
  a cookie planted by someone who uploaded with it owns nothing sent after it); the API's
  colorize call returns a fresh rating token (`new_api_token`). The store keeps only their
  digests (store.owner_digest).
- Cookies: the session cookie is HttpOnly, SameSite=Lax, and Secure whenever the request came
  over HTTPS: directly, or through a reverse proxy that says so in X-Forwarded-Proto when the
  operator trusts it (TRUSTED_PROXIES = the number of proxies in front; then werkzeug's ProxyFix
  believes their X-Forwarded-For/-Proto/-Host). SESSION_COOKIE_SECURE = True forces it always.
- Admin: the statistics need the ADMIN_TOKEN from the configuration, as a Bearer header or
  through the login form. Both are rate limited per address (`login`: 10 tries a minute; a
  wrong Bearer token counts as a try). A login starts a server-side session: the cookie holds
  a random id, the database its digest, with an expiry (ADMIN_SESSION_TTL) and a keyed digest
  of the token (so changing the token logs everybody out); logging out deletes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface

from pix2color.web.errors import WebError
from pix2color.web.settings import WebSettings, current_settings
from pix2color.web.store import owner_digest

View = Callable[..., Any]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# people's photos and the pages that show them: never kept by a proxy, a CDN or the browser
PRIVATE = "private, no-store"


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":  # the stylesheet, script and icon may be cached
        response.headers["Cache-Control"] = PRIVATE
        response.headers.pop("Expires", None)
    return response


# ---------------------------------------------------------------- cookies
class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the Secure flag on whenever the request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = super().get_cookie_secure(app)
        return forced or (has_request_context() and request.is_secure)


# ---------------------------------------------------------------- CSRF
def csrf_token() -> str:
    """This session's CSRF token (created on first use); templates put it in forms."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_required(view: View) -> View:
    """Refuse with 400 unless the request carries this session's token (header or form field)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        expected = session.get("csrf")
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        if not (expected and hmac.compare_digest(str(sent), str(expected))):
            raise WebError(
                400,
                "the form's security token is missing or out of date; reload the page and "
                "try again",
            )
        return view(*args, **kwargs)

    return guarded


# ---------------------------------------------------------------- owners
def page_owner(create: bool = True) -> str | None:
    """The owner digest of this browser session's photos (its secret is made on first use;
    with create=False, None for a session that has sent none)."""
    secret = session.get("owner")
    if not secret:
        if not create:
            return None
        secret = session["owner"] = secrets.token_urlsafe(24)
    return owner_digest("page", secret)


def new_page_owner() -> tuple[str, str]:
    """A fresh owner secret for this browser session's next upload -> (secret, its digest).

    Every page upload gets one (`adopt_page_owner` keeps it in the session once the upload
    is done), so a session cookie planted by someone who uploaded with it never owns the photos
    sent after it: the secret those are owned by reaches only the browser that sent them.
    """
    return _new_owner("page")


def adopt_page_owner(secret: str) -> str | None:
    """Keep a new owner secret in this session -> the digest it replaces (None: it had none);
    the store hands the old digest's uploads to the new one, so the page still lists them."""
    previous = page_owner(create=False)
    session["owner"] = secret
    return previous


def new_api_token() -> tuple[str, str]:
    """A fresh rating token for an API colouring -> (token for the caller, its owner digest)."""
    return _new_owner("api")


def _new_owner(kind: str) -> tuple[str, str]:
    """A fresh random owner secret of `kind` ("page" or "api") -> (secret, its digest)."""
    secret = secrets.token_urlsafe(24)
    return secret, owner_digest(kind, secret)


def owns(job: dict[str, Any], digest: str) -> bool:
    """Whether `digest` is the job's owner (constant time; a job without an owner has none)."""
    owner = job.get("owner") or ""
    return bool(owner) and hmac.compare_digest(owner, digest)


# ---------------------------------------------------------------- rate limits
class RateLimiter:
    """At most `limit` hits per `window` seconds per key (a sliding window of timestamps)."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float:
        """Count one hit -> 0 if allowed, else the seconds until the next one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            return 0.0

    def wait(self, key: str, now: float | None = None) -> float:
        """The seconds until a hit of `key` would be allowed (0: now), without counting one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            live = [t for t in hits if t > now - self.window] if hits else []
            return max(0.001, live[0] + self.window - now) if len(live) >= self.limit else 0.0

    def _prune(self, now: float) -> None:
        stale = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]
        for k in stale:
            del self._hits[k]
        if len(self._hits) >= self.max_keys:  # still full of active clients: forget the oldest
            for k in list(self._hits)[: len(self._hits) // 2]:
                del self._hits[k]


def make_limiters(settings: WebSettings) -> dict[str, list[RateLimiter]]:
    """The limiters of each kind of action that `rate_limited` names (all must allow a hit)."""
    return {
        "colorize": [RateLimiter(settings.colorize_per_minute, 60.0)],
        "recolor": [RateLimiter(settings.recolor_per_minute, 60.0)],
        "rate": [
            RateLimiter(settings.ratings_per_minute, 60.0),
            RateLimiter(settings.ratings_per_hour, 3600.0),
        ],
        "login": [RateLimiter(10, 60.0)],
    }


def _client() -> str:
    """The client's address, as the rate limits count it (a trusted proxy's X-Forwarded-For)."""
    return request.remote_addr or "unknown"


def client_digest() -> str:
    """The client's address as the ratings keep it: keyed, so no address can be read back."""
    return _keyed("client", _client())


def rate_limited(kind: str) -> Callable[[View], View]:
    """Refuse with 429 (and Retry-After) when the client is over its `kind` limit."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            limiters: list[RateLimiter] = current_app.extensions["pix2color.limits"][kind]
            client = _client()
            wait = 0.0
            for limiter in limiters:  # a refused hit is not counted by the later windows
                wait = limiter.hit(client)
                if wait:
                    break
            if wait:
                raise WebError(
                    429,
                    f"too many requests from your address; wait {wait:.0f} s and try again",
                    retry_after=wait,
                )
            return view(*args, **kwargs)

        return guarded

    return decorate


# ---------------------------------------------------------------- admin
ADMIN_DISABLED = (
    "statistics are turned off: set an admin token (ADMIN_TOKEN in the instance folder's "
    "config.py, or the environment variable PIX2COLOR_WEB_ADMIN_TOKEN) and restart"
)


class LoginRequired(WebError):
    """No admin token with the request; the admin blueprint answers a browser with its form."""

    def __init__(self) -> None:
        super().__init__(401, "send Authorization: Bearer <admin token>")


def _keyed(kind: str, value: str) -> str:
    """A digest of `value` keyed with the app's secret key: worthless without the key."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"pix2color-{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _session_digest(sid: str) -> str:
    """What the database keeps of an admin cookie's id (a leaked table logs nobody in)."""
    return hashlib.sha256(f"pix2color-admin-session:{sid}".encode()).hexdigest()


def admin_token() -> str | None:
    return current_settings().admin_token


def token_matches(sent: str) -> bool:
    token = admin_token()
    return bool(token) and hmac.compare_digest(_keyed("admin", sent), _keyed("admin", token))


def _store() -> Any:
    return current_app.extensions["pix2color"].store


def log_in_admin() -> None:
    """Start an admin session: a random id in the cookie, its digest in the database."""
    old = session.get("admin")
    if isinstance(old, str):  # a new login never keeps an id someone else may have set
        _store().end_admin_session(_session_digest(old))
    sid = secrets.token_urlsafe(32)
    token = _keyed("admin", admin_token() or "")
    _store().add_admin_session(_session_digest(sid), token, current_settings().admin_session_ttl)
    session["admin"] = sid


def log_out_admin() -> None:
    """End this browser's admin session on the server: a copy of its cookie is worth nothing."""
    sid = session.pop("admin", None)
    if isinstance(sid, str):
        _store().end_admin_session(_session_digest(sid))


def _too_many_guesses(wait: float) -> WebError:
    return WebError(
        429,
        f"too many admin token attempts from your address; wait {wait:.0f} s and try again",
        retry_after=wait,
    )


def _bearer_matches(sent: str) -> bool:
    """A Bearer token, counted like the login form: a wrong one is a hit of the `login`
    limiter, and while it is full every attempt gets 429 (the right token too)."""
    limiters: list[RateLimiter] = current_app.extensions["pix2color.limits"]["login"]
    client = _client()
    wait = max(limiter.wait(client) for limiter in limiters)
    if wait:
        raise _too_many_guesses(wait)
    if token_matches(sent):
        return True
    for limiter in limiters:
        limiter.hit(client)
    return False


def is_admin() -> bool:
    """The request carries the admin token (Bearer header) or a live admin session's cookie."""
    token = admin_token()
    if not token:
        return False
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return _bearer_matches(auth.removeprefix("Bearer ").strip())
    sid = session.get("admin")
    if not isinstance(sid, str) or not sid:
        return False
    return _store().admin_session(_session_digest(sid), _keyed("admin", token))


def admin_required(view: View) -> View:
    """403 while no admin token is configured; LoginRequired (401) without the token."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not admin_token():
            raise WebError(403, ADMIN_DISABLED)
        if not is_admin():
            raise LoginRequired()
        return view(*args, **kwargs)

    return guarded
