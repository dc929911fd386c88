"""A reference photo on the web: the page's upload, the API's field, kept with the upload."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.web.conftest import decoded, page_headers, photo_bytes, result_ids, upload


def sky_bytes(fmt: str = "PNG", size=(60, 40)) -> bytes:
    """A blue reference photo with some texture, as bytes."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((size[1], size[0], 3), int) + (40, 80, 200)
    rgb = np.clip(rgb + rng.integers(-25, 25, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def blueness(image: Image.Image) -> float:
    """Mean of B - R over the image: higher is bluer."""
    rgb = np.asarray(image.convert("RGB"), np.float32)
    return float((rgb[..., 2] - rgb[..., 0]).mean())


def page_upload(client, headers, **extra):
    data = {"image": upload(photo_bytes(), "grandma.jpg"), **extra}
    return client.post("/jobs", data=data, headers=headers)


def test_a_page_upload_with_a_reference_takes_its_colours_and_remembers_it(app, client):
    headers = page_headers(client)
    plain = page_upload(client, headers)
    r = page_upload(client, headers, reference=upload(sky_bytes(), "sky.png"))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert "colours like sky.png" in r.json["html"]
    store = app.extensions["pix2color"].store
    job = store.get_job(r.json["job"])
    assert job["reference"] and '"name":"sky.png"' in job["reference"]  # the palette, no pixels
    assert store.get_job(plain.json["job"])["reference"] is None
    model = {rid: store.get_result(rid)["model"] for rid in result_ids(plain.json["html"])}
    plain_of = {m: rid for rid, m in model.items()}  # labels are shuffled per job: by model
    for b in result_ids(r.json["html"]):
        a = plain_of[store.get_result(b)["model"]]
        before = decoded(client.get(f"/results/{a}/image").data)
        after = decoded(client.get(f"/results/{b}/image").data)
        assert blueness(after) > blueness(before) + 5
    # the reference's file is not kept: only the upload, its view and the results' files
    files = app.extensions["pix2color"].files
    assert len(list(files.glob("*.upload"))) == 2


def test_points_and_reruns_keep_the_reference(app, client):
    headers = page_headers(client)
    r = page_upload(client, headers, reference=upload(sky_bytes(), "sky.png"))
    job, (a, _) = r.json["job"], result_ids(r.json["html"])
    first = np.asarray(decoded(client.get(f"/results/{a}/image").data))
    again = client.post(f"/results/{a}/points", data={"points": ""}, headers=headers)
    assert again.status_code == 200, again.json
    assert np.array_equal(np.asarray(decoded(client.get(f"/results/{a}/image").data)), first)
    rerun = client.post(f"/jobs/{job}/rerun", data={"size": "128"}, headers=headers)
    assert rerun.status_code == 201 and "colours like sky.png" in rerun.json["html"]


def test_an_empty_reference_field_is_no_reference(client):
    """A form sent without JavaScript carries an empty file field when none was chosen."""
    headers = page_headers(client)
    r = page_upload(client, headers, reference=(io.BytesIO(b""), ""))
    assert r.status_code == 201, r.json
    assert "colours like" not in r.json["html"]


GRAY = photo_bytes("PNG", size=(40, 30))


@pytest.mark.parametrize(
    "data, name, status, says",
    [
        (GRAY, "old.png", 400, "reference: old.png: the reference photo has no colour"),
        (b"just some notes\n", "notes.jpg", 415, "reference: notes.jpg: this is a text file"),
        (b"", "empty.jpg", 400, "reference: empty.jpg: the file is empty"),
    ],
    ids=["grey", "text", "empty"],
)
def test_a_bad_reference_is_refused_naming_the_field(app, client, data, name, status, says):
    headers = page_headers(client)
    r = page_upload(client, headers, reference=upload(data, name))
    assert (r.status_code, r.mimetype) == (status, "application/json")
    assert says in r.json["error"], r.json["error"]
    assert "Traceback" not in r.json["error"] and "/instance/" not in r.json["error"]
    assert not list(app.extensions["pix2color"].files.glob("*.upload"))  # nothing kept


def test_a_reference_over_the_limits_is_413(make_app, client):
    headers = page_headers(client)
    buf = io.BytesIO()
    Image.new("RGB", (1200, 1000), (200, 40, 30)).save(buf, "PNG")
    r = page_upload(client, headers, reference=upload(buf.getvalue(), "huge.png"))
    assert r.status_code == 413 and r.json["error"].startswith("reference: huge.png: 1200x1000")
    r = page_upload(client, headers, reference=upload(b"\xff\xd8" + b"\0" * (3 * 2**20), "x.jpg"))
    assert r.status_code == 413  # the whole request over MAX_CONTENT_LENGTH


def test_the_reference_needs_the_csrf_token(client):
    r = client.post(
        "/jobs",
        data={"image": upload(photo_bytes()), "reference": upload(sky_bytes(), "sky.png")},
        headers={"Accept": "application/json"},
    )
    assert r.status_code in (400, 403)


# ---------------------------------------------------------------- the API
def api(client, **fields):
    data = {"image": upload(photo_bytes(size=(150, 100)), "grandma.jpg"), **fields}
    return client.post("/api/v1/colorize", data=data)


def test_the_api_takes_a_reference(client):
    plain = api(client)
    assert plain.headers["X-Reference-Photo"] == "no"
    r = api(client, reference=upload(sky_bytes("JPEG"), "sky.jpg"))
    assert r.status_code == 200, r.json
    assert r.headers["X-Reference-Photo"] == "yes"
    assert blueness(decoded(r.data)) > blueness(decoded(plain.data)) + 5


def test_the_api_refuses_a_bad_reference_with_json_naming_the_field(client):
    r = api(client, reference=upload(GRAY, "old.png"))
    assert (r.status_code, r.mimetype) == (400, "application/json")
    assert (
        r.json["error"].startswith("reference: old.png:")
        and "give a colour photo" in r.json["error"]
    )


def test_the_openapi_description_has_the_reference_field(client):
    spec = client.get("/api/v1/openapi.json").json
    form = spec["paths"]["/api/v1/colorize"]["post"]["requestBody"]["content"]
    field = form["multipart/form-data"]["schema"]["properties"]["reference"]
    assert field["format"] == "binary" and "palette" in field["description"]
