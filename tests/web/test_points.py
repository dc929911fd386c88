"""Colour points on the web: a page result re-coloured with points, their download, the API."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.web.conftest import decoded, photo_bytes, result_ids, upload

BLUE = "#2050c0"


# a coordinate no float holds (OverflowError), and one past Python's int digits (ValueError)
HUGE_X = '{"points": [{"x": 1%s, "y": 1, "color": "#2050c0"}]}' % ("0" * 400)
HUGER_X = '{"points": [{"x": 1%s, "y": 1, "color": "#2050c0"}]}' % ("0" * 5000)


def points(*pts) -> str:
    return json.dumps({"points": [dict(x=x, y=y, color=c, radius=r) for x, y, c, r in pts]})


def ab_at(image: Image.Image, x: int, y: int, r: int = 2) -> np.ndarray:
    """Mean Lab ab (Pillow's 8-bit LAB, 128 = grey) of a small square around (x, y)."""
    lab = np.asarray(image.convert("RGB").convert("LAB"), np.float32)
    return lab[y - r : y + r + 1, x - r : x + r + 1, 1:].reshape(-1, 2).mean(0) - 128


def post_points(client, result, headers, text):
    return client.post(f"/results/{result}/points", data={"points": text}, headers=headers)


def test_a_point_recolours_its_spot_and_is_kept_with_the_result(app, client, page_job):
    job, (a, b), headers = page_job
    before = decoded(client.get(f"/results/{a}/image").data)
    other = client.get(f"/results/{b}/image").data
    r = post_points(client, a, headers, points((60, 40, BLUE, 4)))
    assert r.status_code == 200, r.json
    assert r.json["points"] == [{"x": 60, "y": 40, "color": BLUE, "radius": 4}]
    assert r.json["label"] == "A" or r.json["label"] == "B"
    assert "alpha" not in r.get_data(as_text=True) and "beta" not in r.get_data(as_text=True)
    assert r.json["thumb"].startswith(f"/results/{a}/thumb?v=")
    after = decoded(client.get(r.json["image"]).data)
    assert after.size == before.size == (120, 80)
    want = ab_at(Image.new("RGB", (5, 5), BLUE), 2, 2)  # the point's chroma (b < 0: blue)
    far_before = np.linalg.norm(ab_at(before, 60, 40) - want)
    assert np.linalg.norm(ab_at(after, 60, 40) - want) < 0.5 * far_before
    # the luminance stays the photo's
    L = np.asarray(after.convert("L"), np.float32) - np.asarray(before.convert("L"), np.float32)
    assert np.abs(L).mean() < 1.5
    assert client.get(f"/results/{b}/image").data == other  # the other model's is untouched
    # kept: the points file, and the card lists them for the page
    got = client.get(f"/results/{a}/points.json")
    assert got.status_code == 200 and got.mimetype == "application/json"
    assert got.headers["Content-Disposition"].startswith("attachment; filename=grandma-points-")
    assert json.loads(got.data) == {"points": r.json["points"]}
    card = client.get(f"/jobs/{job}").get_data(as_text=True)
    assert f'data-points=\'[{{"color": "{BLUE}"' in card  # the page draws them
    assert json.loads(client.get(f"/results/{b}/points.json").data) == {"points": []}


def test_the_points_file_is_what_the_cli_reads(client, page_job, tmp_path):
    from pix2color.guide.points import Point, read_points

    _, (a, _), headers = page_job
    post_points(client, a, headers, points((10, 70, "rgb(200, 40, 30)", 0), (119, 0, "#0f0", 2.5)))
    path = tmp_path / "hints.json"
    path.write_bytes(client.get(f"/results/{a}/points.json").data)
    assert read_points(path) == [
        Point(10, 70, (200, 40, 30), 0.0),
        Point(119, 0, (0, 255, 0), 2.5),
    ]


def test_recolouring_reuses_the_networks_colour(app, client, page_job, monkeypatch):
    _, (a, _), headers = page_job
    service = app.extensions["pix2color"]

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran again")

    monkeypatch.setattr(service.engine, "predict", no_network)
    assert post_points(client, a, headers, points((5, 5, BLUE, 0))).status_code == 200


def test_without_its_kept_colour_a_result_is_predicted_again(app, client, page_job):
    _, (a, _), headers = page_job
    files = app.extensions["pix2color"].files
    (files / f"{a}-ab.npy").unlink()
    assert post_points(client, a, headers, points((5, 5, BLUE, 0))).status_code == 200
    assert (files / f"{a}-ab.npy").is_file()


def test_no_points_gives_the_automatic_colour_back(client, page_job):
    _, (a, _), headers = page_job
    first = np.asarray(decoded(client.get(f"/results/{a}/image").data))
    post_points(client, a, headers, points((60, 40, BLUE, 8)))
    r = post_points(client, a, headers, json.dumps({"points": []}))
    assert r.status_code == 200 and r.json["points"] == []
    assert np.array_equal(np.asarray(decoded(client.get(f"/results/{a}/image").data)), first)
    assert json.loads(client.get(f"/results/{a}/points.json").data) == {"points": []}


def test_a_download_is_encoded_again_after_new_points(client, page_job):
    _, (a, _), headers = page_job
    jpeg = client.get(f"/results/{a}/download?format=jpeg").data
    post_points(client, a, headers, points((60, 40, BLUE, 8)))
    again = client.get(f"/results/{a}/download?format=jpeg").data
    assert again != jpeg


@pytest.mark.parametrize(
    "text, says",
    [
        (points((120, 10, BLUE, 0)), "points: points[0]: (120, 10) is outside the photo (120x80"),
        (points((5, -1, BLUE, 0)), "points: points[0]: (5, -1) is outside the photo"),
        (points((5, 5, "#zz0000", 0)), "points: points[0].color: '#zz0000' is not a colour"),
        (points((5, 5, BLUE, 5000)), "points: points[0].radius: 5000 must be 0 to 1000"),
        ('{"points": [{"x": 1, "y": 2}]}', "points: points[0]: the field 'color' is missing"),
        ('{"points": [{"x": "1", "y": 2, "color": "#fff"}]}', "points: points[0].x: '1' is not"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff", "z": 3}]}', "unknown field 'z'"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff"}', "points: not valid JSON"),
        ("[1, 2]", 'points: expected an object {"points": [...]}'),
        ('{"points": 3}', "points: points: expected a list of points"),
        (points(*[(1, 1, BLUE, 0)] * 201), "points: 201 points; at most 200 per photo"),
        ("x" * 70_000, "points: 70000 characters; at most 65536"),
        (HUGE_X, "points: points[0].x: a number of 401 digits is far too large"),
        (HUGER_X, "points: a number with more than 4300 digits"),
    ],
    ids=[
        "right-edge",
        "negative",
        "colour",
        "radius",
        "missing",
        "string",
        "unknown",
        "json",
        "not-object",
        "not-list",
        "too-many",
        "too-long",
        "401-digits",
        "5001-digits",
    ],  # fmt: skip
)
def test_points_that_cannot_be_used_are_refused_naming_the_field(client, page_job, text, says):
    _, (a, _), headers = page_job
    before = client.get(f"/results/{a}/image").data
    r = post_points(client, a, headers, text)
    assert r.status_code == 400 and r.json["status"] == 400
    assert says in r.json["error"], r.json["error"]
    assert client.get(f"/results/{a}/image").data == before  # nothing changed
    assert json.loads(client.get(f"/results/{a}/points.json").data) == {"points": []}


def test_200_points_are_fine(client, page_job):
    _, (a, _), headers = page_job
    many = [(i % 120, i % 80, BLUE, 0) for i in range(200)]
    r = post_points(client, a, headers, points(*many))
    assert r.status_code == 200 and len(r.json["points"]) == 200


def test_only_the_sender_adds_points_and_with_the_csrf_token(app, client, page_job):
    _, (a, _), headers = page_job
    stranger = app.test_client()
    from tests.web.conftest import page_headers

    r = post_points(stranger, a, page_headers(stranger), points((5, 5, BLUE, 0)))
    assert r.status_code == 403 and "only the person who uploaded" in r.json["error"]
    r = post_points(client, a, {"Accept": "application/json"}, points((5, 5, BLUE, 0)))
    assert r.status_code == 400 and "security token" in r.json["error"]
    assert post_points(client, "no-such", headers, points((5, 5, BLUE, 0))).status_code == 404


def test_recolourings_are_rate_limited(make_app, colorizers):
    from tests.web.conftest import page_headers

    client = make_app({"RECOLOR_PER_MINUTE": 2}).test_client()
    headers = page_headers(client)
    r = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers)
    a = r.json["html"].split('data-result="')[1].split('"')[0]
    codes = [post_points(client, a, headers, points((5, 5, BLUE, 0))).status_code for _ in "xyz"]
    assert codes == [200, 200, 429]


def test_recolourings_take_an_inference_slot(app, client, page_job, monkeypatch):
    _, (a, _), headers = page_job
    service = app.extensions["pix2color"]
    real_slot, slots = service.engine.slot, []

    def counted(pixels=0):
        slots.append(pixels)
        return real_slot(pixels)

    monkeypatch.setattr(service.engine, "slot", counted)
    assert post_points(client, a, headers, points((5, 5, BLUE, 0))).status_code == 200
    assert slots == [120 * 80]


def test_busy_slots_answer_503(app, client, page_job):
    _, (a, _), headers = page_job
    engine = app.extensions["pix2color"].engine
    with engine.slot(), engine.slot():  # both slots taken (INFERENCE_SLOTS = 2)
        r = post_points(client, a, headers, points((5, 5, BLUE, 0)))
    assert r.status_code == 503 and "busy" in r.json["error"]


# ---------------------------------------------------------------- the API
def colorize(client, **fields):
    data = {"image": upload(photo_bytes(size=(150, 100)), "grandma.jpg"), **fields}
    return client.post("/api/v1/colorize", data=data)


def test_the_api_takes_colour_points(client):
    plain = decoded(colorize(client).data)
    r = colorize(client, points=points((75, 50, BLUE, 4)))
    assert r.status_code == 200, r.json
    assert r.headers["X-Colour-Points"] == "1"
    pointed = decoded(r.data)
    assert pointed.size == (150, 100)
    want = ab_at(Image.new("RGB", (5, 5), BLUE), 2, 2)
    assert np.linalg.norm(ab_at(pointed, 75, 50) - want) < 0.5 * np.linalg.norm(
        ab_at(plain, 75, 50) - want
    )
    assert colorize(client, points="").headers["X-Colour-Points"] == "0"


@pytest.mark.parametrize(
    "text, says",
    [
        (points((150, 10, BLUE, 0)), "points: points[0]: (150, 10) is outside the photo (150x100"),
        (points((1, 1, "blue", 0)), "points: points[0].color: 'blue' is not a colour"),
        ("{nope", "points: not valid JSON"),
        (points(*[(1, 1, BLUE, 0)] * 201), "at most 200 per photo"),
        (HUGE_X, "points: points[0].x: a number of 401 digits is far too large"),
        (HUGER_X, "points: a number with more than 4300 digits"),
    ],
    ids=["outside", "colour", "json", "too-many", "401-digits", "5001-digits"],
)
def test_the_api_refuses_bad_points_with_json_naming_the_field(client, text, says):
    r = colorize(client, points=text)
    assert (r.status_code, r.mimetype) == (400, "application/json")
    assert says in r.json["error"], r.json["error"]


def _many_points(n: int) -> str:
    return points(*[(1, 1, BLUE, 0)] * n)


def test_a_4_mb_points_field_is_refused_naming_the_field_limit_not_the_request_s(make_app):
    """100,000 points (4 MB) in a multipart form passed the field limit (500 KB), not the
    request's (here 8 MB): the 413 says so, on the page's route and the API's."""
    app = make_app({"MAX_CONTENT_LENGTH": 8 * 2**20})
    client = app.test_client()
    text = _many_points(100_000)
    assert 3_500_000 < len(text) < 8 * 2**20
    from tests.web.conftest import page_headers

    headers = page_headers(client)
    job = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers).json
    (a, _) = result_ids(job["html"])
    page = client.post(
        f"/results/{a}/points", data={"points": text}, headers=headers,
        content_type="multipart/form-data",
    )  # fmt: skip
    api = colorize(client, points=text)
    for r in (page, api):
        assert (r.status_code, r.mimetype) == (413, "application/json")
        error = r.json["error"]
        assert error.startswith("points: the field is larger than 500 KB"), error
        assert "at most 200 colour points" in error and "65536 characters" in error
        assert "MB" not in error  # never the whole request's limit


def test_too_many_form_parts_say_so(make_app):
    client = make_app().test_client()
    data = {f"f{i}": "1" for i in range(1001)}
    r = client.post("/api/v1/colorize", data={**data, "image": upload(photo_bytes())})
    assert r.status_code == 413 and "more than 1000 parts" in r.json["error"], r.json


def test_a_request_over_its_own_limit_still_says_the_request_limit(client):
    r = colorize(client, points=_many_points(100_000))  # 3.6 MB: over the tests' 2 MB
    assert r.status_code == 413 and "larger than this server's limit of 2 MB" in r.json["error"]


def test_api_points_are_checked_on_the_upright_photo(client):
    img = Image.fromarray(np.full((60, 90), 128, np.uint8))  # stored 90x60, shown 60x90
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    data = {"image": upload(buf.getvalue(), "turned.jpg")}
    ok = client.post("/api/v1/colorize", data={**data, "points": points((59, 89, BLUE, 0))})
    assert ok.status_code == 200, ok.json
    data = {"image": upload(buf.getvalue(), "turned.jpg")}
    bad = client.post("/api/v1/colorize", data={**data, "points": points((89, 5, BLUE, 0))})
    assert bad.status_code == 400 and "(60x90" in bad.json["error"]


def test_the_openapi_description_has_the_points_field(client):
    spec = client.get("/api/v1/openapi.json").json
    form = spec["paths"]["/api/v1/colorize"]["post"]["requestBody"]["content"]
    field = form["multipart/form-data"]["schema"]["properties"]["points"]
    assert "at most 200 points" in field["description"]
    schema = spec["components"]["schemas"]["Points"]
    assert schema["properties"]["points"]["maxItems"] == 200
    assert set(schema["properties"]["points"]["items"]["required"]) == {"x", "y", "color"}
    limits = client.get("/api/v1/models").json["limits"]
    assert limits["max_points"] == 200 and limits["recolor_per_minute"] == 120


def test_a_rerun_keeps_each_models_points(app, client, page_job):
    job, (a, _), headers = page_job
    store = app.extensions["pix2color"].store
    post_points(client, a, headers, points((60, 40, BLUE, 4)))
    r = client.post(f"/jobs/{job}/rerun", data={"size": "128"}, headers=headers)
    assert r.status_code == 201, r.json
    for rid in result_ids(r.json["html"]):
        same_model = store.get_result(rid)["model"] == store.get_result(a)["model"]
        got = json.loads(client.get(f"/results/{rid}/points.json").data)["points"]
        assert got == ([{"x": 60, "y": 40, "color": BLUE, "radius": 4}] if same_model else [])


def test_refused_points_take_no_slot(app, client, page_job, monkeypatch):
    _, (a, _), headers = page_job
    engine = app.extensions["pix2color"].engine
    monkeypatch.setattr(engine, "slot", lambda pixels=0: pytest.fail("took a slot"))
    for bad in (points((500, 5, BLUE, 0)), points((5, 5, "#zz0000", 0)), "{"):
        assert post_points(client, a, headers, bad).status_code == 400
