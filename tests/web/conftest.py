"""Fixtures for the web service: an app with two tiny random models, a client, photos as bytes,
and a real PostgreSQL server (Debian's binaries, started once per session in a temp folder)."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.inference.colorizer import Colorizer
from pix2color.models.unet import UNetGenerator
from pix2color.web import create_app
from tests.conftest import real_photo

ADMIN_TOKEN = "test-admin-token"
TEST_CONFIG = dict(
    SECRET_KEY="test-secret",
    ADMIN_TOKEN=ADMIN_TOKEN,
    DEFAULT_SIZE=64,
    MIN_SIZE=32,
    MAX_SIZE=256,
    MAX_CONTENT_LENGTH=2 * 2**20,
    MAX_PIXELS=1_000_000,
    BUSY_TIMEOUT=0.05,
    COLORIZE_PER_MINUTE=1000,
    RATINGS_PER_MINUTE=1000,
    RATINGS_PER_HOUR=10_000,
    FILE_TTL=600,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread; more only spin against a busy machine's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_generator(seed: int) -> UNetGenerator:
    torch.manual_seed(seed)
    return UNetGenerator(base_channels=8, depth=4, max_channels=16).eval()


@pytest.fixture(scope="session")
def colorizers() -> dict[str, Colorizer]:
    """Two different tiny random models, so there is something to compare."""
    return {
        name: Colorizer(tiny_generator(seed), size=64, name=name)
        for seed, name in enumerate(("alpha", "beta"))
    }


@pytest.fixture
def make_app(tmp_path, colorizers):
    """create_app on one instance folder; call again to 'restart' the server on it."""
    apps = []

    def make(config: dict | None = None, models: dict | None = None, suggester=None):
        app = create_app(
            {"INSTANCE_PATH": str(tmp_path / "instance"), **TEST_CONFIG, **(config or {})},
            colorizers=colorizers if models is None else models,
            suggester=suggester,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["pix2color"].store.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(client) -> str:
    """The session's CSRF token, as the page's meta tag gives it to the browser."""
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def page_headers(client) -> dict[str, str]:
    """What app.js sends with every fetch."""
    return {"X-CSRF-Token": csrf(client), "Accept": "application/json"}


def photo_bytes(fmt: str = "JPEG", mode: str = "L", size=(120, 80), name="astronaut", **save):
    """A real photo, resized, in a mode and format, as bytes."""
    img = Image.fromarray(real_photo(name)).resize(size).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def upload(data: bytes, filename: str = "photo.jpg") -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), filename


def result_ids(html: str) -> list[str]:
    return re.findall(r'data-result="([^"]+)"', html)


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture
def page_job(client):
    """Upload one grey photo through the page (both models) -> (job id, [result ids])."""
    headers = page_headers(client)
    r = client.post("/jobs", data={"image": upload(photo_bytes(), "grandma.jpg")}, headers=headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["job"], result_ids(r.json["html"]), headers


# ---------------------------------------------------------------- PostgreSQL
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    """Debian's PostgreSQL server programs (initdb, pg_ctl), newest version first."""
    for initdb in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True):
        return initdb.parent
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on a free loopback port -> its base URL (no database)."""
    bindir = _pg_bin()
    if bindir is None:
        reason = "PostgreSQL server programs (initdb, pg_ctl) not found: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs them, so CI must have them)")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="pix2color-pg-"))
    # initdb refuses to run as root: run the server as the postgres user when we are root
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    try:
        subprocess.run(
            [
                *as_user,
                bindir / "initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            **run,
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        subprocess.run(
            [
                *as_user,
                bindir / "pg_ctl",
                "-D",
                data,
                "-l",
                root / "server.log",
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            **run,
        )
    except subprocess.CalledProcessError as e:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {e.stderr}\n{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:
    """Each store test runs on both: None is SQLite in the instance folder."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def gray_array(h: int = 80, w: int = 120) -> np.ndarray:
    return np.asarray(Image.fromarray(real_photo("coffee")).convert("L").resize((w, h)))
