"""The JSON API as a program uses it: every mode in, the same size out, every bad input answered."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import real_photo
from tests.web.conftest import decoded, photo_bytes, upload


def colorize(client, data: bytes, filename="photo.jpg", **fields):
    return client.post("/api/v1/colorize", data={"image": upload(data, filename), **fields})


def test_colorize_returns_the_photo_coloured_at_its_own_size(client):
    r = colorize(client, photo_bytes(size=(150, 100)), "grandma.jpg")
    assert r.status_code == 200, r.json
    assert r.mimetype == "image/png"
    assert r.headers["Content-Disposition"] == "attachment; filename=grandma-colorized.png"
    assert r.headers["X-Model"] == "alpha" and r.headers["X-Working-Size"] == "64"
    assert r.headers["X-Job-Id"]
    img = decoded(r.data)
    assert (img.format, img.size, img.mode) == ("PNG", (150, 100), "RGB")
    a, b = np.asarray(img.convert("LAB"), np.float32)[..., 1:].transpose(2, 0, 1) - 128
    assert np.abs(a).mean() + np.abs(b).mean() > 0.5  # it is not returned grey


def test_model_size_and_format_are_honoured(client):
    r = colorize(client, photo_bytes(), model="beta", size="128", format="jpeg")
    assert r.status_code == 200, r.json
    assert (r.mimetype, r.headers["X-Model"], r.headers["X-Working-Size"]) == (
        "image/jpeg",
        "beta",
        "128",
    )
    assert r.headers["Content-Disposition"].endswith("-colorized.jpg")
    assert decoded(r.data).format == "JPEG"
    assert decoded(colorize(client, photo_bytes(), format="webp").data).format == "WEBP"


def _exif_rotated() -> bytes:
    img = Image.fromarray(real_photo("rocket")).resize((90, 60))
    exif = img.getexif()
    exif[0x0112] = 6  # displayed rotated 90 degrees: 60x90
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _palette_with_transparency() -> bytes:
    img = Image.fromarray(real_photo("chelsea")).resize((90, 60)).convert("P")
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def _sixteen_bit() -> bytes:
    gray = np.asarray(Image.fromarray(real_photo("coffee")).convert("L").resize((90, 60)))
    buf = io.BytesIO()
    Image.fromarray(gray.astype(np.uint16) * 257).save(buf, "PNG")  # mode I;16
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, size, mode",
    [
        (lambda: photo_bytes("JPEG", "CMYK", (90, 60)), (90, 60), "RGB"),
        (_sixteen_bit, (90, 60), "RGB"),
        (lambda: photo_bytes("PNG", "P", (90, 60)), (90, 60), "RGB"),
        (_palette_with_transparency, (90, 60), "RGBA"),
        (lambda: photo_bytes("PNG", "LA", (90, 60)), (90, 60), "RGBA"),
        (lambda: photo_bytes("PNG", "1", (90, 60)), (90, 60), "RGB"),
        (lambda: photo_bytes("TIFF", "L", (90, 60)), (90, 60), "RGB"),
        (lambda: photo_bytes("BMP", "RGB", (90, 60)), (90, 60), "RGB"),
        (_exif_rotated, (60, 90), "RGB"),  # upright, as people see it
    ],
    ids=[
        "cmyk",
        "16-bit",
        "palette",
        "palette+transparency",
        "grey+alpha",
        "1-bit",
        "tiff",
        "bmp",
        "exif-rotated",
    ],
)
def test_every_mode_comes_back_at_its_size(client, make, size, mode):
    r = colorize(client, make())
    assert r.status_code == 200, r.json
    img = decoded(r.data)
    assert (img.size, img.mode) == (size, mode)


def test_alpha_is_kept(client):
    rgba = Image.fromarray(real_photo("astronaut")).resize((64, 64)).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    rgba.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    r = colorize(client, buf.getvalue(), "logo.png")
    out = decoded(r.data)
    assert out.mode == "RGBA" and out.size == (64, 64)
    assert np.array_equal(np.asarray(out)[..., 3], alpha)
    # JPEG has no alpha: flattened onto white, never onto black
    jpeg = decoded(colorize(client, buf.getvalue(), "logo.png", format="jpeg").data)
    assert np.asarray(jpeg.convert("L"))[:, 0].mean() > 250  # the transparent column is white


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny file that claims to be a w x h PNG: a decompression bomb's header."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _animated_gif() -> bytes:
    frames = [
        Image.fromarray(np.roll(real_photo("chelsea")[:60, :90], 30 * i, axis=1)).convert("P")
        for i in range(3)
    ]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _big_gray_png() -> bytes:  # 1.2 Mpx: over the test limit of 1 Mpx, but a small file
    buf = io.BytesIO()
    Image.new("L", (1200, 1000), 128).save(buf, "PNG")
    return buf.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize(
    "data, filename, status, message",
    [
        (b"", "empty.jpg", 400, "empty.jpg: the file is empty"),
        (b"just some notes, not a photo\n", "notes.jpg", 415, "this is a text file, not a photo"),
        (SVG, "drawing.svg", 415, "this is an SVG drawing, not a photo"),
        (HTML, "cat.jpg", 415, "this is an HTML page, not a photo"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "scan.jpg", 415, "PDF document"),
        (bytes(range(256)) * 4, "random.png", 415, "not a photo format this service reads"),
        (photo_bytes(size=(300, 200))[:1500], "cut.jpg", 400, "truncated"),
        (_animated_gif(), "cat.gif", 415, "animated image (3 frames)"),
        (_png_header_only(30000, 30000), "bomb.png", 413, "far too many pixels"),
        (_png_header_only(4000, 3000), "bomb2.png", 413, "4000x3000 is 12,000,000 pixels"),
        (_big_gray_png(), "big.png", 413, "more than the 1,000,000 pixels (1 megapixels) this"),
    ],
    ids=[
        "empty",
        "text",
        "svg",
        "html-as-jpg",
        "pdf",
        "noise",
        "truncated",
        "animated",
        "pillow-bomb",
        "header-bomb",
        "over-pixel-limit",
    ],
)
def test_bad_files_get_a_clear_json_error(client, data, filename, status, message):
    r = colorize(client, data, filename)
    assert r.status_code == status, r.json
    assert r.is_json and r.json["status"] == status
    assert message in r.json["error"], r.json["error"]
    assert "/instance/" not in r.json["error"]  # never the server's own paths


def test_a_photo_just_over_the_pixel_limit_gets_the_exact_counts(make_app):
    """5001x5000 is 25.0 megapixels to one decimal: "25.0 megapixels; ... up to 25 megapixels"
    read as a contradiction. Both counts are exact now."""
    client = make_app({"MAX_PIXELS": 25_000_000}).test_client()
    r = colorize(client, _png_header_only(5001, 5000), "wide.png")
    assert r.status_code == 413
    assert r.json["error"] == (
        "wide.png: 5001x5000 is 25,005,000 pixels, more than the 25,000,000 pixels (25 "
        "megapixels) this server colours in one photo; downscale it first"
    )
    assert "25,000,000 pixels" in client.get("/").get_data(as_text=True)


def test_too_large_upload_is_413_json(client):
    r = colorize(client, b"\xff\xd8" + b"\0" * (3 * 2**20), "huge.jpg")
    assert r.status_code == 413
    assert "larger than this server's limit of 2 MB" in r.json["error"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"size": "big"}, "size must be a whole number of pixels from 32 to 256"),
        ({"size": "8"}, "got '8'"),
        ({"format": "gif"}, "format must be one of png, jpeg, webp"),
        ({"model": "nope"}, "unknown model 'nope'; this server has alpha, beta"),
    ],
)
def test_bad_parameters_are_400(client, fields, message):
    r = colorize(client, photo_bytes(), **fields)
    assert r.status_code == 400 and message in r.json["error"]


def test_missing_image_field(client):
    r = client.post("/api/v1/colorize", data={"size": "64"})
    assert r.status_code == 400 and "form field 'image'" in r.json["error"]


def test_unknown_route_and_method_are_json(client):
    assert client.get("/api/v1/nothing").json["status"] == 404
    r = client.get("/api/v1/colorize")
    assert r.status_code == 405 and "GET" in r.json["error"]


def test_models_lists_names_sizes_and_limits(client):
    body = client.get("/api/v1/models").json
    assert [m["name"] for m in body["models"]] == ["alpha", "beta"]
    assert body["default_model"] == "alpha" and body["models"][0]["default"] is True
    assert body["models"][0]["parameters"] > 0
    assert body["size"] == {"default": 64, "min": 32, "max": 256}
    assert body["limits"]["max_pixels"] == 1_000_000


def colorized_job(client, **fields) -> tuple[str, str]:
    """Colour a photo through the API -> (its job id, its rating token)."""
    r = colorize(client, photo_bytes(), **fields)
    assert r.status_code == 200, r.json
    return r.headers["X-Job-Id"], r.headers["X-Rating-Token"]


def test_ratings_api_records_scores_and_choices(app, client):
    job, token = colorized_job(client)
    r = client.post("/api/v1/ratings", json={"job": job, "token": token, "score": 4})
    assert r.status_code == 201 and r.json["saved"] == {"score": {"model": "alpha", "score": 4}}
    changed = {"job": job, "token": token, "model": "A", "score": 2}  # a changed mind
    assert client.post("/api/v1/ratings", json=changed).status_code == 201
    store = app.extensions["pix2color"].store
    assert store.model_stats("named")["alpha"]["n"] == 1
    assert store.model_stats("named")["alpha"]["total"] == 2
    assert store.model_stats("blind") == {}  # the caller chose the model: not a blind rating


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"job": "nope", "score": 3}, 404, "no such job"),
        ({"job": "JOB", "score": 6}, 400, "score must be a whole number from 1 to 5"),
        ({"job": "JOB", "score": True}, 400, "score must be"),
        ({"job": "JOB"}, 400, "say what to record"),
        ({"job": "JOB", "best": "alpha"}, 400, "best needs a comparison"),
        ({"job": "JOB", "score": 3, "model": "gamma"}, 400, "its results are A"),
        ({"job": "JOB", "stars": 3}, 400, "unknown field(s) ['stars']"),
        ({"job": "JOB", "token": None, "score": 3}, 403, "X-Rating-Token"),
        ({"job": "JOB", "token": "guess", "score": 3}, 403, "cannot be rated with that token"),
        (["JOB"], 400, "not a JSON object"),
    ],
)
def test_ratings_api_refusals(client, body, status, message):
    job, token = colorized_job(client)
    if isinstance(body, dict):
        body = {"token": token, **body, "job": job if body["job"] == "JOB" else body["job"]}
        body = {k: v for k, v in body.items() if v is not None}
    r = client.post("/api/v1/ratings", json=body)
    assert r.status_code == status and message in r.json["error"], r.json


def test_ratings_api_needs_json(client):
    r = client.post("/api/v1/ratings", data={"job": "x", "score": "3"})
    assert r.status_code == 415 and "application/json" in r.json["error"]


def test_healthz(app, client, monkeypatch):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["status"] == "ok"
    assert r.json["models"] == ["alpha", "beta"] and r.json["database"] == "sqlite"
    from pix2color.web.database import StoreError

    def down():
        raise StoreError("database is gone")

    monkeypatch.setattr(app.extensions["pix2color"].store, "ping", down)
    r = client.get("/healthz")
    assert r.status_code == 503 and "database is gone" in r.json["error"]


def test_openapi_describes_every_api_route(app, client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == described
    size = spec["paths"]["/api/v1/colorize"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]["properties"]["size"]
    assert (size["minimum"], size["maximum"]) == (32, 256)


def test_a_database_outage_is_503_not_a_crash(app, client, monkeypatch):
    from pix2color.web.database import StoreError

    def down(*args, **kwargs):
        raise StoreError("PostgreSQL database x on db:5432: connection refused")

    monkeypatch.setattr(app.extensions["pix2color"].store, "get_job", down)
    r = client.post("/api/v1/ratings", json={"job": "x", "score": 3})
    assert r.status_code == 503 and "cannot reach its database" in r.json["error"]
    assert "db:5432" not in r.json["error"]  # internals stay in the server's log
