"""`pix2color serve` for real: the command, waitress, and the page in a headless Chromium.

The browser test starts `pix2color serve` as a subprocess on a free port with two tiny models,
then does what a person does: upload a photo, move the slider, rate, pick the best, download,
and read the statistics. Set PIX2COLOR_SCREENSHOTS=DIR to keep its screenshots.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.cli import main
from pix2color.models.encoder_unet import MobileNetClassUNet
from pix2color.models.io import save_pretrained
from pix2color.web.engine import model_name
from tests.conftest import real_photo
from tests.web.conftest import free_port, tiny_generator
from tests.web.test_server import exchange

CHROMIUM = "/usr/bin/chromium"
# what this machine's closed network and root user need (see the machine notes)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ADMIN = "e2e-admin-token"


def test_serve_refuses_an_unknown_model_clearly(tmp_path, capsys):
    code = main(["serve", "--models", "nope", "--instance", str(tmp_path / "inst")])
    assert code == 2
    assert "model 'nope' not found" in capsys.readouterr().err


def test_serve_without_any_model_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    import pix2color.models.io as models_io

    monkeypatch.setattr(models_io, "model_dirs", lambda: [tmp_path / "empty"])  # no model at all
    assert main(["serve", "--instance", str(tmp_path / "inst")]) == 2
    assert "no models to serve" in capsys.readouterr().err


@pytest.fixture
def tiny_model(tmp_path) -> str:
    return f"tiny={save_pretrained(tiny_generator(0), tmp_path / 'tiny')}"


def test_serve_refuses_a_database_url_it_cannot_use(tmp_path, tiny_model, capsys):
    argv = ["serve", "--models", tiny_model, "--instance", str(tmp_path / "inst")]
    assert main([*argv, "--database-url", "mysql://x"]) == 2
    assert "error: database URL 'mysql://x' is not understood" in capsys.readouterr().err


def test_serve_says_when_it_cannot_listen(tmp_path, tiny_model, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--models", tiny_model, "--instance", str(tmp_path / "inst")]
        assert main([*argv, "--port", port]) == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_model_names_for_paths_and_names(tmp_path):
    run = tmp_path / "runs" / "default" / "model"
    run.mkdir(parents=True)
    (tmp_path / "runs" / "default" / "best.pt").write_bytes(b"")
    assert model_name(str(run)) == ("default", str(run))
    assert model_name(str(tmp_path / "runs/default/best.pt"))[0] == "default"
    assert model_name("small=/some/where") == ("small", "/some/where")
    assert model_name("default") == ("default", "default")


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`pix2color serve` in a subprocess with two tiny models -> (url, log file)."""
    root = tmp_path_factory.mktemp("serve")
    specs = [
        f"{name}={save_pretrained(tiny_generator(seed), root / name)}"
        for seed, name in enumerate(("alpha", "beta"))
    ]
    torch.manual_seed(0)  # a tiny colour-class network suggests the colours at a spot
    suggest = save_pretrained(MobileNetClassUNet(decoder_channels=(32, 16, 16, 8, 8, 8)),
                              root / "suggest-tiny")  # fmt: skip
    port = free_port()
    env = {**os.environ, "PIX2COLOR_WEB_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1",
           "PIX2COLOR_WEB_SUGGEST_MODEL": str(suggest)}  # fmt: skip
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pix2color.cli",
            "serve",
            "--port",
            str(port),
            "--models",
            *specs,
            "--instance",
            str(root / "instance"),
            "--size",
            "128",
            "--threads",
            "4",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pix2color serve exited: {(root / 'server.log').read_text()}")
            try:
                if _get(f"{base}/healthz", 2)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"no /healthz in 90 s: {(root / 'server.log').read_text()}")
            time.sleep(0.2)
        yield SimpleNamespace(url=base, log=root / "server.log")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_served_by_waitress_not_a_dev_server(server):
    with urllib.request.urlopen(f"{server.url}/healthz") as r:
        assert r.headers["Server"] == "pix2color"  # waitress' ident; Werkzeug's would say so
        body = json.loads(r.read())
    assert body["status"] == "ok" and body["models"] == ["alpha", "beta"]


@pytest.mark.slow
def test_a_120_mb_body_gets_the_apps_json_413_from_serve(server):
    """The issue's case: over the 50 MB default, refused from the header in the API's JSON."""
    port = int(server.url.rsplit(":", 1)[1])
    head = (
        "POST /api/v1/colorize HTTP/1.1\nHost: localhost\n"
        f"Content-Type: multipart/form-data; boundary=x\nContent-Length: {120 * 2**20}\n"
    )
    status, headers, body = exchange(port, head)
    assert (status, headers["content-type"], headers["server"]) == (
        413,
        "application/json",
        "pix2color",
    )
    assert json.loads(body) == {
        "status": 413,
        "error": "the upload is larger than this server's limit of 50 MB; send a smaller file "
        "(or a JPEG instead of an uncompressed TIFF)",
    }
    assert _get(f"{server.url}/healthz")[0] == 200  # and it goes on serving


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} not found: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it, so CI must have it)")
        pytest.skip(reason)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("PIX2COLOR_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_a_person_colours_rates_and_downloads_a_photo(server, browser, tmp_path, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []  # a CSP violation or a script error shows up here
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(30_000)
    try:
        use_the_page(page, server.url, tmp_path, shots)
    except Exception:  # say what the page and the server saw, then fail as before
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        print(f"page {page.url}; console errors {problems}; screenshot {shots / 'failure.png'}")
        print("server log:", server.log.read_text()[-4000:])
        raise
    finally:
        context.close()
    assert [p for p in problems if "status of 415" not in p] == []  # 415: the SVG, expected


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression from Python: page.wait_for_function would eval() inside the page,
    which the page's strict CSP (rightly) forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def use_the_page(page, server: str, tmp_path: Path, shots: Path) -> None:
    """Upload, slide, rate, choose, view full size, download, read the statistics."""
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(real_photo("astronaut")).convert("L").save(photo, quality=92)  # 512x512
    page.goto(server)
    assert "Drop photos here" in page.inner_text("#dropzone")
    page.select_option("#size", "192")
    page.set_input_files("#file-input", str(photo))
    card = page.locator(".card[data-job]")
    card.wait_for()
    assert "working size 192 px" in card.inner_text()
    assert page.locator(".result").count() == 2
    wait_until(
        page,
        "[...document.querySelectorAll('.compare img')]"
        ".every(i => i.complete && i.naturalWidth === 512)",
    )

    # the slider: drag from the middle to a fifth of the width
    frame = page.locator(".result[data-label=A] .compare-frame")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, y, steps=8)
    page.mouse.up()
    pos = frame.evaluate("f => parseFloat(f.style.getPropertyValue('--pos'))")
    assert 19 < pos < 21  # the divider follows the pointer
    clip = page.locator(".result[data-label=A] .compare-after").evaluate(
        "img => getComputedStyle(img).clipPath"
    )
    assert clip.startswith("inset(0px 0px 0px") and clip != "inset(0px 0px 0px 50%)"
    page.screenshot(path=str(shots / "1-result.png"), full_page=True)

    # rate A 4 stars, then pick B: the model names appear
    result_a = page.locator(".result[data-label=A]")
    result_a.locator("label[title='4 stars']").click()
    status = card.locator(".status")
    status.filter(has_text="Saved: 4 stars for A.").wait_for()
    assert card.locator(".model-name").first.inner_text() == ""  # still blind
    page.locator(".result[data-label=B] .pick-best").click()
    status.filter(has_text="Saved: B is the best.").wait_for()
    assert "A is " in status.inner_text() and "B is " in status.inner_text()
    assert page.locator(".result.is-best").get_attribute("data-label") == "B"
    names = {card.locator(".model-name").nth(i).inner_text() for i in range(2)}
    assert names == {"alpha", "beta"}

    # full size, then back
    result_a.locator(".js-fullsize").click()
    assert "is-full" in result_a.locator(".compare").get_attribute("class")
    page.screenshot(path=str(shots / "2-rated-full-size.png"))
    result_a.locator(".js-fullsize").click()

    # download A as PNG and as JPEG: full resolution, named after the photo
    for fmt, ext, pil_format in (("PNG", "png", "PNG"), ("JPEG", "jpg", "JPEG")):
        with page.expect_download() as info:
            result_a.locator("a.download", has_text=fmt).click()
        download = info.value
        assert download.suggested_filename == f"astronaut-colorized-A.{ext}"
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        with Image.open(path) as img:
            assert (img.format, img.size, img.mode) == (pil_format, (512, 512), "RGB")
        assert 20_000 < path.stat().st_size < 2_000_000

    # everything as a zip
    with page.expect_download() as info:
        page.locator("#zip-link").click()
    assert info.value.suggested_filename == "pix2color-colorized.zip"

    # a reload lists the session's photo with its judgement; thumbnails until full size
    page.reload()
    page.locator(".card[data-job]").wait_for()
    assert page.locator(".card[data-job]").count() == 1
    assert page.locator(".result.is-best").get_attribute("data-label") == "B"
    assert page.inner_text("#toolbar-count") == "1 photo coloured"
    after = ".result[data-label=A] .compare-after"
    assert page.locator(after).get_attribute("src").endswith("/thumb")
    page.locator(".result[data-label=A] .js-fullsize").click()
    wait_until(page, f"document.querySelector('{after}').getAttribute('src').endsWith('/image')")
    wait_until(page, f"document.querySelector('{after}').complete")
    page.locator(".result[data-label=A] .js-fullsize").click()

    # re-run at another size: the new colouring is added beside the first, both in the zip
    first = page.locator(".card[data-job]").first
    first.locator(".rerun select").select_option("128")
    first.locator(".rerun button").click()
    wait_until(page, "document.querySelectorAll('.card[data-job]').length === 2")
    cards = page.locator(".card[data-job]")
    assert "working size 128 px" in cards.nth(0).inner_text()
    assert "working size 192 px" in cards.nth(1).inner_text()
    assert page.inner_text("#toolbar-count") == "2 photos coloured"
    with page.expect_download() as info:
        page.locator("#zip-link").click()
    both = tmp_path / "both.zip"
    info.value.save_as(both)
    with zipfile.ZipFile(both) as zf:
        assert len(zf.namelist()) == 4  # A and B of each colouring
    page.reload()
    page.locator(".card[data-job]").first.wait_for()
    assert page.locator(".card[data-job]").count() == 2

    # a file that is no photo gets an explanation, not a broken card
    bad = tmp_path / "notes.png"
    bad.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    page.set_input_files("#file-input", str(bad))
    page.locator(".card.failed .error-message").wait_for()
    assert "SVG drawing, not a photo" in page.locator(".card.failed").inner_text()
    page.screenshot(path=str(shots / "3-page.png"), full_page=True)

    # the statistics, behind the admin token
    page.goto(f"{server}/admin")
    page.fill("input[name=token]", ADMIN)
    page.click("button[type=submit]")
    blind = page.locator("table.stats[data-kind=blind]")
    blind.wait_for()
    text = blind.inner_text()
    assert blind.locator("tr[data-model]").count() == 2
    rated = blind.locator("tr[data-model]", has_text="4.00")
    assert rated.count() == 1  # A: 4 stars
    assert blind.locator("tr[data-model]", has_text="100%").count() == 1  # B: 1 win of 1
    assert "alpha" in text and "beta" in text
    named = page.locator("table.stats[data-kind=named]")  # the API's, counted apart: none
    assert named.locator("tr[data-model]", has_text="–").count() == 2
    page.screenshot(path=str(shots / "4-statistics.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.parametrize("touch", [False, True], ids=["narrow-window", "phone"])
def test_on_a_phone_the_count_shows_and_no_paste_hint(server, browser, tmp_path, shots, touch):
    """390 px wide: no "Ctrl+V" hint, and the "N photos coloured" count within the screen."""
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(real_photo("astronaut")).convert("L").resize((160, 160)).save(photo)
    width = 390
    context = browser.new_context(
        viewport={"width": width, "height": 844}, has_touch=touch, is_mobile=touch
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(server.url)
        assert not page.locator(".paste-hint").is_visible()
        assert "Ctrl+V" not in page.inner_text("body")
        assert "Choose photos" in page.inner_text("#dropzone")
        page.set_input_files("#file-input", str(photo))
        page.locator(".card[data-job]").wait_for()
        count = page.locator("#toolbar-count")
        count.scroll_into_view_if_needed()
        assert count.inner_text() == "1 photo coloured"
        box = count.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        zip_link = page.locator("#zip-link").bounding_box()
        assert zip_link["x"] >= 0 and zip_link["x"] + zip_link["width"] <= width, zip_link
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways
        page.screenshot(path=str(shots / f"mobile-{'phone' if touch else 'narrow'}.png"))
    finally:
        context.close()


@pytest.mark.slow
def test_on_a_desktop_the_paste_hint_shows(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    assert page.locator(".paste-hint").is_visible()
    assert "paste one with Ctrl+V" in page.inner_text("#dropzone")
    assert not page.locator(".on-touch").first.is_visible()
    context.close()


@pytest.mark.slow
def test_the_page_blocks_nothing_it_needs_under_its_csp(server, browser):
    """No inline script or style is needed: the strict CSP reports no violation on any page."""
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    for path in ("/", "/admin", "/jobs/expired-or-wrong"):
        page.goto(server.url + path)
    assert [p for p in problems if "404" not in p] == []
    assert page.locator("h1").inner_text() == "Not found"
    context.close()


# the mean colour of the displayed coloured image around a photo pixel (5x5), read in the page
READ_PIXELS = """([selector, x, y]) => {
  const img = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(x - 2, y - 2, 5, 5).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += d[i + c];
  return sum.map((v) => v / 25);
}"""


def lab_ab(rgb) -> tuple[float, float]:
    """Pillow's 8-bit LAB of an (r, g, b): ab with 0 = grey."""
    px = Image.new("RGB", (1, 1), tuple(round(v) for v in rgb)).convert("LAB").getpixel((0, 0))
    return px[1] - 128, px[2] - 128


def wait_recolored(page, result, n_points: int, color: str | None = None) -> int:
    """Wait until the result shows its re-colouring with n points -> its time in ms."""
    selector = f".result[data-label={result}]"
    check = (
        f"(() => {{ const r = document.querySelector('{selector}');"
        " const p = JSON.parse(r.dataset.points || '[]');"
        " return !r.classList.contains('is-recolouring') && r.dataset.recolourMs"
        f" && p.length === {n_points}"
        + (f" && p.some(q => q.color === '{color}')" if color else "")
        + " })()"
    )
    wait_until(page, check)
    return int(page.locator(selector).get_attribute("data-recolour-ms"))


@pytest.mark.slow
def test_a_person_places_moves_and_deletes_a_colour_point(server, browser, tmp_path, shots):
    """Click the photo, pick a colour: that spot turns that colour in about a second; drag the
    point, download the points, delete it; on a desktop and on a 390 px phone."""
    photo = tmp_path / "astronaut.jpg"
    img = Image.fromarray(real_photo("astronaut")).convert("L").resize((1024, 768))
    img.save(photo, quality=92)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(30_000)
    try:
        page.goto(server.url)
        page.select_option("#size", "256")
        page.set_input_files("#file-input", str(photo))
        page.locator(".card[data-job]").wait_for()
        after = ".result[data-label=A] .compare-after"
        wait_until(page, f"document.querySelector('{after}').complete")
        result = page.locator(".result[data-label=A]")
        result.locator(".js-points").click()
        layer = result.locator(".points-layer")
        assert layer.is_visible() and result.locator(".points-panel").is_visible()

        # a click on the displayed photo lands on the photo's own pixel (307, 307)
        layer.scroll_into_view_if_needed()
        box = layer.bounding_box()
        assert box["width"] < 1024  # shown scaled down: the mapping has to scale up
        x, y = 307, 307
        before = page.evaluate(READ_PIXELS, [after, x, y])
        page.mouse.click(
            box["x"] + (x + 0.5) / 1024 * box["width"], box["y"] + (y + 0.5) / 768 * box["height"]
        )
        wait_recolored(page, "A", 1)
        pts = json.loads(result.get_attribute("data-points"))
        assert (pts[0]["x"], pts[0]["y"], pts[0]["radius"]) == (x, y, 3), pts
        # the swatches: the colour there now, then the colours the server finds likely there
        wait_until(page, "document.querySelector('.result[data-label=A]').dataset.suggested")
        likely = json.loads(result.get_attribute("data-suggested"))
        assert 1 <= len(likely) <= 3, likely
        shown = result.locator(".swatch.likely").evaluate_all("bs => bs.map(b => b.dataset.color)")
        assert shown == likely  # the endpoint's colours, in its order
        assert result.locator(".swatch.from-photo").count() == 1 + len(likely)
        assert result.locator(".swatch").count() == 1 + len(likely) + 6  # and the common ones
        assert "likely here" in result.locator(".swatch-note").inner_text()
        assert "is-error" not in result.locator(".swatch-note").get_attribute("class")

        # pick blue: the spot turns blue, the luminance stays
        times = []
        result.locator(".point-color").fill("#2050c0")
        times.append(wait_recolored(page, "A", 1, "#2050c0"))
        now = page.evaluate(READ_PIXELS, [after, x, y])
        a0, b0 = lab_ab(before)
        a1, b1 = lab_ab(now)
        want_a, want_b = lab_ab((0x20, 0x50, 0xC0))
        # towards blue (the photo keeps its own lightness, so the exact ab is out of reach)
        far, near = math.dist((a0, b0), (want_a, want_b)), math.dist((a1, b1), (want_a, want_b))
        assert near < 0.75 * far and b1 < b0 - 10, (before, now)
        assert "Re-coloured with 1 point in" in result.locator(".points-status").inner_text()
        assert card_names_hidden(page)  # still blind: a point names no model
        page.screenshot(path=str(shots / "points-desktop.png"))

        # the other swatches re-colour too; a few rounds for the timing
        for i in range(1, 1 + len(likely)):
            color = result.locator(".swatch.from-photo").nth(i).get_attribute("data-color")
            if color == "#2050c0":
                continue
            result.locator(".swatch.from-photo").nth(i).click()
            times.append(wait_recolored(page, "A", 1, color))
        result.locator(".point-color").fill("#2050c0")
        times.append(wait_recolored(page, "A", 1, "#2050c0"))

        # drag the point to 60 % / 60 %
        dot = result.locator(".point").first
        dbox = dot.bounding_box()
        page.mouse.move(dbox["x"] + dbox["width"] / 2, dbox["y"] + dbox["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=6)
        page.mouse.up()
        wait_until(page, "JSON.parse(document.querySelector('.result[data-label=A]')"
                         ".dataset.points)[0].x > 600")  # fmt: skip
        times.append(wait_recolored(page, "A", 1, "#2050c0"))
        moved = json.loads(result.get_attribute("data-points"))[0]
        assert abs(moved["x"] - 614) <= 2 and abs(moved["y"] - 460) <= 2, moved

        # the points as a file, the CLI's format
        with page.expect_download() as info:
            result.locator("a", has_text="Points (JSON)").click()
        assert info.value.suggested_filename.endswith("-points-A.json")
        saved = tmp_path / "points.json"
        info.value.save_as(saved)
        assert json.loads(saved.read_text()) == {"points": [moved]}

        # delete it: the automatic colour comes back
        result.locator(".point").first.click()
        result.locator(".js-delete-point").click()
        wait_until(page, "document.querySelector('.result[data-label=A] .points-status')"
                         ".textContent === 'Automatic colour again'")  # fmt: skip
        back = page.evaluate(READ_PIXELS, [after, x, y])
        assert max(abs(u - v) for u, v in zip(back, before, strict=True)) < 6, (before, back)
        print(f"re-colouring 1024x768 through the page, request to image shown: {times} ms")
        (shots / "points-timings.json").write_text(json.dumps(times))
    except Exception:
        page.screenshot(path=str(shots / "points-failure.png"), full_page=True)
        print(f"console errors {problems}; server log:", server.log.read_text()[-3000:])
        raise
    finally:
        context.close()
    assert problems == []

    # a phone: tap to place a point; nothing wider than the screen
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(server.url)  # another session: its own upload
        page.set_input_files("#file-input", str(photo))
        page.locator(".card[data-job]").wait_for()
        result = page.locator(".result[data-label=A]")
        result.locator(".js-points").tap()
        layer = result.locator(".points-layer")
        layer.scroll_into_view_if_needed()
        box = layer.bounding_box()
        # the suggestions fail here: the page says so and offers its own bolder colours
        busy = '{"error": "the server is busy colouring other photos", "status": 503}'
        page.route(
            "**/suggest?*",
            lambda route: route.fulfill(status=503, content_type="application/json", body=busy),
        )
        page.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        wait_recolored(page, "A", 1)
        wait_until(page, "document.querySelector('.result[data-label=A]').dataset.suggested")
        note = result.locator(".swatch-note")
        assert "is-error" in note.get_attribute("class") and note.is_visible()
        assert "No “likely here” colours (the server is busy" in note.inner_text()
        assert result.locator(".swatch.from-photo").count() == 4  # here now and three bolder
        assert result.locator(".swatch.likely").count() == 0
        result.locator(".swatch").nth(5).tap()
        wait_recolored(page, "A", 1, result.locator(".swatch").nth(5).get_attribute("data-color"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        panel = result.locator(".points-panel").bounding_box()
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390, panel
        result.locator(".points-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "points-phone.png"))
    finally:
        context.close()


def card_names_hidden(page) -> bool:
    return all(
        page.locator(".model-name").nth(i).inner_text() == ""
        for i in range(page.locator(".model-name").count())
    )


def _blueness_of_results(page, card) -> float:
    """Mean B - R over a card's coloured results, fetched in the page's own session."""
    values = []
    for url in card.locator(".compare-after").evaluate_all("imgs => imgs.map(i => i.dataset.full)"):
        body = page.request.get(urllib.parse.urljoin(page.url, url)).body()
        img = Image.open(io.BytesIO(body)).convert("RGB")
        rgb = np.asarray(img, np.float32)
        values.append(float((rgb[..., 2] - rgb[..., 0]).mean()))
    return float(np.mean(values))


@pytest.mark.slow
@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_reference_photo_gives_its_colours(server, browser, tmp_path, shots, phone):
    """Choose a blue reference photo, then a photo: its colour turns bluer than without; the
    card says which reference it followed; on a 390 px phone nothing is wider than the screen."""
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(real_photo("astronaut")).convert("L").resize((160, 160)).save(photo)
    sky = tmp_path / "sky.png"
    rng = np.random.default_rng(0)
    rgb = np.zeros((40, 60, 3), int) + (40, 80, 200) + rng.integers(-25, 25, (40, 60, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(sky)
    width = 390 if phone else 1280
    context = browser.new_context(
        viewport={"width": width, "height": 844}, has_touch=phone, is_mobile=phone
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(server.url)
        page.set_input_files("#file-input", str(photo))  # no reference: automatic colour
        page.locator(".card[data-job]").wait_for()
        plain = _blueness_of_results(page, page.locator(".card[data-job]").first)
        page.set_input_files("#reference-input", str(sky))
        page.set_input_files("#file-input", str(photo))
        page.locator(".card[data-job]").nth(1).wait_for()
        card = page.locator(".card[data-job]").first  # the newest comes first
        assert "colours like sky.png" in card.inner_text()
        assert _blueness_of_results(page, card) > plain + 5
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = page.locator("#reference-input").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        page.screenshot(path=str(shots / f"reference-{'phone' if phone else 'desktop'}.png"))
    finally:
        context.close()
