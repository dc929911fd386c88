"""Colour points: reading them (hints.py), spreading them (propagate.py), in the Colorizer."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from PIL import Image

from pix2color.color.lab import gray_to_L, rgb_to_lab
from pix2color.errors import EXIT_USAGE, UsageError
from pix2color.eval.evaluate import simulated_points
from pix2color.guide.points import (
    Point,
    PointsError,
    check_points,
    parse_color,
    parse_points,
    read_points,
    to_working,
)
from pix2color.guide.propagate import (
    PULL,
    SIGMA,
    STIFFNESS,
    color_ab,
    patches,
    propagate,
    solve_difference,
)
from pix2color.inference.colorizer import Colorizer
from pix2color.models.unet import UNetGenerator
from tests.conftest import real_photo

BLUE = (32, 80, 192)


# ---------------------------------------------------------------- reading
@pytest.mark.parametrize(
    "text, rgb",
    [("#2050c0", BLUE), ("#2050C0", BLUE), ("#25c", (0x22, 0x55, 0xCC)),
     ("rgb(32,80,192)", BLUE), ("RGB( 32, 80, 192 )", BLUE)],
)  # fmt: skip
def test_colour_strings(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["#zz0000", "2050c0", "#2050c", "rgb(300,0,0)", "blue", 5])
def test_bad_colour_strings_are_refused(text):
    with pytest.raises(ValueError):
        parse_color(text)


def test_a_hints_file_is_read(tmp_path):
    f = tmp_path / "hints.json"
    f.write_text(json.dumps({"points": [{"x": 120, "y": 80, "color": "#2050c0", "radius": 3},
                                        {"x": 1.5, "y": 2, "color": "rgb(255,0,0)"}]}))  # fmt: skip
    assert read_points(f) == [Point(120, 80, BLUE, 3), Point(1.5, 2, (255, 0, 0), 0)]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"points": [{"x": 1, "y": 1, "color": "#2050c0"}, {"x": 1, "y": 1, "color": "#2050c0"},'
         ' {"x": 1, "y": 1, "color": "#zz0000"}]}',
         "hints.json: points[2].color: '#zz0000' is not a colour; use '#rrggbb'"),
        ('{"points": [{"x": 1, "color": "#2050c0"}]}', "points[0]: the field 'y' is missing"),
        ('{"points": [{"x": 1, "y": 2, "colour": "#2050c0"}]}', "the field 'color' is missing"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff", "size": 2}]}', "unknown field 'size'"),
        ('{"points": [{"x": "1", "y": 2, "color": "#fff"}]}', "points[0].x: '1' is not a number"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff", "radius": -1}]}', "points[0].radius"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff", "radius": 5000}]}', "0 to 1000 pixels"),
        ('{"points": {"x": 1}}', "points: expected a list"),
        ('[{"x": 1, "y": 2, "color": "#fff"}]', 'expected an object {"points": [...]}'),
        ('{"points": [], "extra": 1}', "unknown key 'extra'"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff"}', "hints.json: not valid JSON"),
        ('{"points": [{"x": 1%s, "y": 2, "color": "#fff"}]}' % ("0" * 400),
         "points[0].x: a number of 401 digits is far too large"),
        ('{"points": [{"x": 1, "y": 2%s, "color": "#fff"}]}' % ("0" * 5000),
         "hints.json: a number with more than 4300 digits"),
        ('{"points": [{"x": 1, "y": 2, "color": "#fff", "radius": -1%s}]}' % ("0" * 400),
         "points[0].radius: a number of 401 digits"),
        ('{"points": [{"x": "%s", "y": 2, "color": "#fff"}]}' % ("9" * 5000),
         "points[0].x: '%s... is not a number" % ("9" * 36)),  # cut short
    ],
)  # fmt: skip
def test_bad_hints_files_name_the_file_and_the_field(tmp_path, content, message):
    f = tmp_path / "hints.json"
    f.write_text(content)
    with pytest.raises(PointsError) as e:
        read_points(f)
    assert message in str(e.value) and str(f) in str(e.value)
    assert isinstance(e.value, UsageError) and e.value.exit_code == EXIT_USAGE


def test_a_missing_hints_file_is_named(tmp_path):
    with pytest.raises(PointsError, match="nope.json: no such hints file"):
        read_points(tmp_path / "nope.json")


def test_points_outside_the_photo_are_refused_by_name():
    points = parse_points({"points": [{"x": 5, "y": 5, "color": "#fff"},
                                      {"x": 64, "y": 5, "color": "#fff"}]}, "h.json")  # fmt: skip
    check_points(points[:1], (64, 48))
    with pytest.raises(PointsError, match=r"h.json: points\[1\]: \(64, 5\) is outside .*64x48"):
        check_points(points, (64, 48), "h.json")


def test_points_reach_the_working_size():
    (x, y, r), = to_working([Point(99.5, 0, BLUE, 10)], (200, 100), (50, 100))  # fmt: skip
    assert (x, y, r) == (49.5, -0.25, 5.0)


# ---------------------------------------------------------------- spreading
def two_regions(h=32, w=48):
    """L (h, w): a dark left half and a light right half, split by a sharp vertical edge."""
    L = np.full((h, w), 30.0, np.float32)
    L[:, w // 2 :] = 70.0
    return L


def test_a_point_colours_its_region_and_barely_the_other():
    L = two_regions()
    auto = torch.zeros(2, *L.shape)
    out = propagate(L, auto, [(5.0, 16.0, 1.0)], [BLUE], pull=1e-6)  # reach: the whole object
    target = torch.from_numpy(color_ab([BLUE])[0])[:, None]  # (2, 1)
    left, right = out[:, :, :24].reshape(2, -1), out[:, :, 24:].reshape(2, -1)
    assert (left - target).abs().max() < 0.2 * target.abs().max()  # the whole object, even far
    assert right.abs().max() < 0.05 * target.abs().max()  # the edge stops it


def test_no_points_is_the_automatic_colour_itself():
    auto = torch.randn(2, 8, 8)
    assert propagate(np.zeros((8, 8)), auto, [], []) is auto


def test_far_from_points_the_colour_returns_to_automatic():
    L = np.full((16, 256), 50.0, np.float32)  # one flat object, long: the weak pull decides
    auto = torch.full((2, 16, 256), 5.0)
    strong = propagate(L, auto, [(0.0, 8.0, 1.0)], [BLUE], pull=1e-3)
    weak = propagate(L, auto, [(0.0, 8.0, 1.0)], [BLUE], pull=1e-5)
    near, far = (strong[:, 8, 2] - 5).abs().max(), (strong[:, 8, -1] - 5).abs().max()
    assert near > 30 and far < near / 3
    assert (weak[:, 8, -1] - 5).abs().max() > 2 * far  # a weaker pull reaches farther


def test_the_fast_solver_matches_a_direct_sparse_solve():
    rng = np.random.default_rng(0)
    h, w = 40, 56
    L = (np.cumsum(rng.normal(0, 3, (h, w)), axis=1) % 100).astype(np.float32)  # many edges
    centres = [(float(rng.integers(0, w)), float(rng.integers(0, h)), 1.5) for _ in range(6)]
    mask, target = patches(centres, rng.uniform(-60, 60, (6, 2)).astype(np.float32), (h, w))
    # on blocks of 2x2 (at most 600 of them), then conjugate gradients
    fast = solve_difference(L, mask, target, direct_pixels=600, iterations=300, tol=1e-9)
    quick = solve_difference(L, mask, target, direct_pixels=600)  # the default iterations
    # the same energy as one sparse matrix
    g, idx = L / 100, np.arange(h * w).reshape(h, w)
    wx = np.exp(-((g[:, 1:] - g[:, :-1]) ** 2) / (2 * SIGMA**2))
    wy = np.exp(-((g[1:] - g[:-1]) ** 2) / (2 * SIGMA**2))
    i = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    j = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    W = sp.coo_matrix((np.concatenate([wx.ravel(), wy.ravel()]), (i, j)), (h * w, h * w))
    W = (W + W.T).tocsr()
    pull = PULL * (256 / w) ** 2
    A = sp.diags(np.asarray(W.sum(1)).ravel() + pull + STIFFNESS * mask.ravel()) - W
    exact = np.stack(
        [spla.spsolve(A.tocsc(), STIFFNESS * (mask * target[c]).ravel()) for c in range(2)]
    ).reshape(2, h, w)
    assert np.abs(fast - exact).max() < 0.01 * np.abs(exact).max()
    assert np.abs(quick - exact).mean() < 2.0  # a hard case, L full of edges (photos: ~0.8)


# ---------------------------------------------------------------- the Colorizer
@pytest.fixture(scope="module")
def colorizer():
    torch.manual_seed(0)
    return Colorizer(UNetGenerator(base_channels=8, depth=4, max_channels=16), size=32)


def _gray_two_halves(w=96, h=64):
    g = np.full((h, w), 60, np.uint8)
    g[:, w // 2 :] = 200
    return Image.fromarray(g, "L")


def test_the_colorizer_spreads_a_point_and_keeps_the_luminance(colorizer):
    image = _gray_two_halves()
    auto = colorizer(image)
    pointed = colorizer(image, points=[Point(10, 30, (40, 90, 40), radius=3)])
    assert pointed.size == image.size
    lab_auto, lab = (rgb_to_lab(np.asarray(im)) for im in (auto, pointed))
    moved = np.abs(lab - lab_auto)[..., 1:].sum(-1)  # (H, W)
    assert moved[:, :40].mean() > 5 * max(moved[:, 56:].mean(), 0.5)
    L_in = gray_to_L(np.asarray(image, np.float32) / 255).numpy()
    assert np.abs(lab[..., 0] - L_in).max() < 1.0  # the photo's own luminance, to 8-bit rounding


def test_the_colorizer_without_points_is_unchanged(colorizer):
    image = _gray_two_halves()
    assert np.array_equal(np.asarray(colorizer(image)), np.asarray(colorizer(image, points=[])))


def test_the_colorizer_refuses_points_outside_the_photo(colorizer):
    with pytest.raises(PointsError, match="outside the photo"):
        colorizer(_gray_two_halves(), points=[Point(96, 3, BLUE)])


def test_simulated_points_are_reproducible_and_nested():
    truth = real_photo("coffee")[:64, :96]
    five, ten = simulated_points(truth, 5, "a/b"), simulated_points(truth, 10, "a/b")
    assert ten[:5] == five and simulated_points(truth, 5, "a/b") == five
    assert simulated_points(truth, 5, "other") != five
    p = five[0]
    assert 0 <= p.x < 96 and 0 <= p.y < 64 and p.radius == 2
    lab = rgb_to_lab(truth)[int(p.y) - 1 : int(p.y) + 2, int(p.x) - 1 : int(p.x) + 2]
    a, b = color_ab([p.color])[0]
    assert abs(a - lab[..., 1].mean()) < 8 and abs(b - lab[..., 2].mean()) < 8
