"""Colour suggestions on the web: the page's endpoint for its own photos, and the API's."""

from __future__ import annotations

import pytest
import torch

from pix2color.models.encoder_unet import MobileNetClassUNet
from pix2color.web.suggestions import Suggester
from tests.web.conftest import page_headers, photo_bytes, upload

HEX = r"^#[0-9a-f]{6}$"


@pytest.fixture(scope="module")
def tiny_classes() -> MobileNetClassUNet:
    torch.manual_seed(0)
    return MobileNetClassUNet(decoder_channels=(32, 16, 16, 8, 8, 8)).eval()


@pytest.fixture
def app(make_app, tiny_classes):
    return make_app(suggester=Suggester(tiny_classes, size=64, name="tiny-classes"))


@pytest.fixture
def job(client):
    headers = page_headers(client)
    r = client.post("/jobs", data={"image": upload(photo_bytes(size=(120, 80)))}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json["job"], headers


def test_a_spot_gets_its_likely_colours_as_json(app, client, job):
    import re

    job_id, headers = job
    r = client.get(f"/jobs/{job_id}/suggest?x=60&y=40", headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/json", r.json
    body = r.json
    assert (body["job"], body["x"], body["y"], body["model"]) == (job_id, 60, 40, "tiny-classes")
    found = body["suggestions"]
    assert 1 <= len(found) <= 3
    for s in found:
        assert set(s) == {"color", "ab", "probability"} and re.match(HEX, s["color"])
        assert len(s["ab"]) == 2 and 0 < s["probability"] <= 1
    probs = [s["probability"] for s in found]
    assert probs == sorted(probs, reverse=True)
    # computed once, kept beside the upload; it expires with it
    files = app.extensions["pix2color"].files
    kept = list(files.glob("*-classes.npz"))
    assert len(kept) == 1
    again = client.get(f"/jobs/{job_id}/suggest?x=60&y=40&k=5", headers=headers)
    assert again.json["suggestions"][0] == found[0] and len(again.json["suggestions"]) <= 5
    app.extensions["pix2color"].cleanup(now=1e12)
    assert not kept[0].exists()


def test_the_distribution_is_computed_once_per_photo(app, client, job, monkeypatch):
    job_id, headers = job
    suggester = app.extensions["pix2color"].suggester
    calls = []
    real = suggester.distribution
    monkeypatch.setattr(suggester, "distribution", lambda p: calls.append(1) or real(p))
    for x in (5, 60, 110):
        assert client.get(f"/jobs/{job_id}/suggest?x={x}&y=7", headers=headers).status_code == 200
    assert calls == [1]


@pytest.mark.parametrize(
    "query, says",
    [
        ("y=4", "x: missing; send x=0 to 119"),
        ("x=abc&y=4", "x: 'abc' is not a whole number; send x=0 to 119"),
        ("x=120&y=4", "x: 120 is outside 0 to 119 (pixels from the left of the 120x80 photo)"),
        ("x=3&y=-1", "y: -1 is outside 0 to 79"),
        ("x=3&y=2.5", "y: '2.5' is not a whole number"),
        ("x=3&y=4&k=0", "k: 0 is outside 1 to 8"),
    ],
    ids=["missing", "not-a-number", "right-edge", "negative", "fraction", "k"],
)
def test_a_bad_spot_is_a_json_400_naming_the_field(client, job, query, says, monkeypatch, app):
    job_id, headers = job
    monkeypatch.setattr(
        app.extensions["pix2color"].engine, "slot", lambda pixels=0: pytest.fail("took a slot")
    )
    r = client.get(f"/jobs/{job_id}/suggest?{query}", headers=headers)
    assert (r.status_code, r.mimetype) == (400, "application/json")
    assert says in r.json["error"], r.json["error"]


def test_only_the_sender_asks_and_with_the_csrf_token(app, client, job):
    job_id, headers = job
    stranger = app.test_client()
    r = stranger.get(f"/jobs/{job_id}/suggest?x=5&y=5", headers=page_headers(stranger))
    assert r.status_code == 403 and "only the person who uploaded" in r.json["error"]
    r = client.get(f"/jobs/{job_id}/suggest?x=5&y=5", headers={"Accept": "application/json"})
    assert r.status_code == 400 and "security token" in r.json["error"]
    assert client.get("/jobs/no-such/suggest?x=5&y=5", headers=headers).status_code == 404


def test_suggestions_share_the_recolouring_rate_limit(make_app, tiny_classes):
    client = make_app(
        {"RECOLOR_PER_MINUTE": 2}, suggester=Suggester(tiny_classes, 64)
    ).test_client()
    headers = page_headers(client)
    r = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers)
    job_id = r.json["job"]
    codes = [client.get(f"/jobs/{job_id}/suggest?x=1&y=1", headers=headers).status_code
             for _ in "xyz"]  # fmt: skip
    assert codes == [200, 200, 429]


def test_without_a_suggestions_model_the_answer_says_so(make_app):
    client = make_app({"SUGGEST_MODEL": "off"}).test_client()
    headers = page_headers(client)
    job_id = client.post("/jobs", data={"image": upload(photo_bytes())}, headers=headers).json[
        "job"
    ]
    r = client.get(f"/jobs/{job_id}/suggest?x=1&y=1", headers=headers)
    assert r.status_code == 503 and "colour suggestions are off" in r.json["error"]


# ---------------------------------------------------------------- the API
def test_the_api_suggests_for_a_photo_it_is_sent(client):
    data = {"image": upload(photo_bytes(size=(150, 100))), "x": "149", "y": "0", "k": "2"}
    r = client.post("/api/v1/suggest", data=data)
    assert r.status_code == 200, r.json
    assert (r.json["x"], r.json["y"], r.json["width"], r.json["height"]) == (149, 0, 150, 100)
    assert 1 <= len(r.json["suggestions"]) <= 2
    bad = client.post("/api/v1/suggest", data={**data, "image": upload(photo_bytes()), "x": "150"})
    assert (bad.status_code, bad.mimetype) == (400, "application/json")
    assert bad.json["error"].startswith("x: 150 is outside 0 to 119")
    none = client.post("/api/v1/suggest", data={"x": "1", "y": "1"})
    assert none.status_code == 400 and "no photo" in none.json["error"]


def test_the_openapi_description_has_the_suggestions(client):
    spec = client.get("/api/v1/openapi.json").json
    op = spec["paths"]["/api/v1/suggest"]["post"]
    props = op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"image", "x", "y", "k"} <= set(props)
    assert "/jobs/{id}/suggest" in op["description"]
    item = spec["components"]["schemas"]["Suggestions"]["properties"]["suggestions"]["items"]
    assert set(item["required"]) == {"color", "ab", "probability"}
