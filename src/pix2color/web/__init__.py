"""pix2color's web service: colour photos in the browser or through a JSON API, compare models.

`create_app()` is the application factory (Flask's flaskr shape). Configuration comes, in
order, from DEFAULTS, the instance folder's `config.py`, environment variables
`PIX2COLOR_WEB_<KEY>` (e.g. PIX2COLOR_WEB_ADMIN_TOKEN) and the `settings` the serve command
passes; tests give `test_config` instead of the file and the environment. The web code reads
them as one frozen `WebSettings`. Models are loaded once per process (or injected with
`colorizers=`). Run it with `pix2color serve`.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing the package stays light: `pix2color --help` needs no Flask
    from flask import Flask

    from pix2color.inference.colorizer import Colorizer
    from pix2color.web.suggestions import Suggester

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = dict(
    SECRET_KEY=None,  # None: made once and kept in the instance folder (file secret_key)
    DATABASE_URL=None,  # None: SQLite in the instance folder; postgresql://... to share
    MODELS=None,  # names or paths ("name=path" to name one); None: every shipped model
    # colour suggestions' model (a colour-class model folder); None: the installed one
    # (models/suggest/colour-classes) if any; "off": no suggestions
    SUGGEST_MODEL=None,
    DEFAULT_MODEL=None,  # the API's model when a request names none (else "default" or first)
    DEFAULT_SIZE=256,  # working size: the long side the model sees
    MIN_SIZE=64,
    MAX_SIZE=1024,
    COMPARE_MODELS=3,  # a page upload is coloured by this many models (random ones if more)
    MAX_CONTENT_LENGTH=50 * 2**20,  # bytes per request (413 above)
    # bytes per form field that is not a file (413 above; such a field is held in memory)
    MAX_FORM_MEMORY_SIZE=500_000,
    MAX_PIXELS=25_000_000,  # per photo (413 above): colouring takes ~100 MB per megapixel
    INFERENCE_SLOTS=2,  # photos decoded and coloured (or results encoded) at once
    INFERENCE_QUEUE=16,  # requests that may wait for a slot; one more is busy (503) at once
    BUSY_TIMEOUT=10.0,  # seconds a request waits for a slot before 503
    COLORIZE_PER_MINUTE=60,  # per client address (429 above)
    RECOLOR_PER_MINUTE=120,  # re-colourings with new colour points, per client address
    MAX_POINTS=200,  # colour points per photo and request (400 above)
    # per client address (429 above): a person rates each of up to 3 results and picks one,
    # 4 requests a photo, a photo every 10 s or more; a script gets no further
    RATINGS_PER_MINUTE=30,
    RATINGS_PER_HOUR=300,
    FILE_TTL=3600,  # seconds uploads and results are kept
    CLEANUP_INTERVAL=60,  # seconds between sweeps of expired files
    MAX_FILES_PER_ZIP=100,
    ADMIN_TOKEN=None,  # None: the statistics pages are off
    ADMIN_SESSION_TTL=8 * 3600,  # seconds an admin login lasts (kept in the database)
    TRUSTED_PROXIES=0,  # reverse proxies in front whose X-Forwarded-For/-Proto may be believed
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SECURE=False,  # True: always Secure; else Secure on HTTPS requests only
)


def _secret_key(instance: Path) -> str:
    """The instance folder's secret key, made on first start (shared by its processes)."""
    path = instance / "secret_key"
    if not path.exists():
        tmp = instance / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never world-readable
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: if another process made one first, theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _suggester(spec: Any, size: int) -> Suggester | None:
    """The SUGGEST_MODEL setting -> a Suggester (the model loads on first use), or None."""
    from pix2color.errors import UsageError
    from pix2color.models.io import SUGGEST_DIR, resolve, suggestion_model
    from pix2color.web.suggestions import Suggester

    if spec is None:
        found = suggestion_model()
        if found is None:
            log.info("colour suggestions are off: no suggestions model is installed")
        return Suggester(found, size) if found else None
    if str(spec).strip().lower() in ("", "off", "none", "false", "0"):
        return None
    path = suggestion_model(str(spec)) or Path(str(spec))
    if not path.exists():
        try:
            path = resolve(str(spec))
        except UsageError:
            raise UsageError(
                f"SUGGEST_MODEL {str(spec)!r} is neither a model folder nor a suggestions "
                f"model in {SUGGEST_DIR}/ of the model folders; give a colour-class model's "
                "folder, or 'off'"
            ) from None
    return Suggester(path, size)


def create_app(
    test_config: dict | None = None,
    colorizers: dict[str, Colorizer] | None = None,
    *,
    settings: dict | None = None,
    suggester: Suggester | None = None,
) -> Flask:
    """Application factory; each model is loaded once per process, and tests can inject them
    (the suggestions model is loaded on first use)."""
    from flask import Flask, request

    from pix2color.errors import UsageError
    from pix2color.web import admin, api, views
    from pix2color.web.engine import Engine, load_colorizers
    from pix2color.web.errors import register_error_handlers
    from pix2color.web.forms import FormRequest
    from pix2color.web.jobs import Service
    from pix2color.web.schema import SCORES
    from pix2color.web.security import (
        SessionInterface,
        add_security_headers,
        csrf_token,
        make_limiters,
    )
    from pix2color.web.settings import WebSettings
    from pix2color.web.store import Store

    given = {**(test_config or {}), **(settings or {})}
    instance = Path(
        given.get("INSTANCE_PATH") or os.environ.get("PIX2COLOR_WEB_INSTANCE_PATH") or "instance"
    ).resolve()
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True)
    app.request_class = FormRequest  # a form's 413 names the limit it passed
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("PIX2COLOR_WEB")
    else:
        app.config.from_mapping(test_config)
    app.config.from_mapping(settings or {})
    app.config["DEBUG"] = app.debug = False  # never: the debugger runs code from the page
    app.session_interface = SessionInterface()  # Secure cookie on HTTPS (or a trusted proxy's)
    settings = WebSettings.from_config(app.config, instance)
    settings.files.mkdir(parents=True, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(instance)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore

    if colorizers is None:
        from pix2color.models.io import available_models

        specs = app.config["MODELS"] or available_models()
        if not specs:
            raise UsageError(
                "no models to serve: none is installed in models/; train one (pix2color train "
                "configs/pix2pix-scratch.toml) and pass it: --models runs/pix2pix-scratch/model"
            )
        colorizers = load_colorizers(list(specs), size=settings.default_size)
    engine = Engine(
        colorizers,
        slots=settings.inference_slots,
        wait=settings.busy_timeout,
        queue=settings.inference_queue,
    )
    if suggester is None:
        suggester = _suggester(app.config["SUGGEST_MODEL"], settings.default_size)
    store = Store.open(app.config["DATABASE_URL"], instance)
    app.extensions["pix2color"] = Service(store, engine, settings, suggester)
    app.extensions["pix2color.settings"] = settings
    app.extensions["pix2color.limits"] = make_limiters(settings)

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    register_error_handlers(app)
    app.after_request(add_security_headers)
    app.jinja_env.globals.update(csrf_token=csrf_token, scores=SCORES)

    @app.before_request
    def _expire_old_files() -> None:
        if request.endpoint != "static":
            app.extensions["pix2color"].maybe_cleanup()

    log.info("pix2color web: models %s, %s", ", ".join(engine.names), store.describe())
    return app
