"""Colour suggestions: the distinct likely colours at a spot of a colour-class distribution."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pix2color.color.classes import ab_bin_centres
from pix2color.color.lab import rgb_to_lab_t
from pix2color.guide.suggest import (
    SpotError,
    class_distribution,
    likely_colors,
    spot_distribution,
    swatch_hex,
)
from tests.conftest import ROOT

BLUE_AB, ORANGE_AB = (0.0, -40.0), (30.0, 60.0)


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return ab_bin_centres()


def bin_of(bins: torch.Tensor, ab) -> int:
    return int(torch.cdist(torch.tensor([ab]), bins).argmin())


def two_modes(bins, shape=(8, 12), blue=0.6, orange=0.3) -> torch.Tensor:
    """(gh, gw, Q): everywhere 60 % blue, 30 % orange, the rest spread evenly."""
    p = torch.full((*shape, len(bins)), 0.1 / (len(bins) - 2))
    p[..., bin_of(bins, BLUE_AB)] = blue
    p[..., bin_of(bins, ORANGE_AB)] = orange
    return p


def test_two_clear_modes_come_back_most_likely_first(bins):
    got = likely_colors(two_modes(bins), bins, (48, 32), 20, 10, L=60.0, k=3)
    assert [*got[0].ab, *got[1].ab] == pytest.approx([*BLUE_AB, *ORANGE_AB], abs=1.0)
    assert got[0].probability > got[1].probability > got[2].probability
    assert got[0].probability == pytest.approx(0.6, abs=0.01)
    for i, s in enumerate(got):  # distinct: more than 10 ab units apart
        assert all(math.dist(s.ab, t.ab) > 10 for t in got[i + 1 :])
    # the swatches show those hues: blue has b < 0, orange a > 0 and b > 0
    lab = [rgb_to_lab_t(torch.tensor(rgb(s.hex)).view(3, 1, 1) / 255).flatten() for s in got]
    assert lab[0][2] < -20 and lab[1][1] > 10 and lab[1][2] > 30
    # deterministic: the same answer every time
    assert likely_colors(two_modes(bins), bins, (48, 32), 20, 10, L=60.0, k=3) == got


def rgb(hex_color: str) -> list[float]:
    return [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]


def test_suggestions_keep_apart(bins):
    # two neighbouring bins share a mode: one suggestion for both, the next one is the orange
    p = two_modes(bins)
    p[..., bin_of(bins, (BLUE_AB[0] + 10, BLUE_AB[1]))] = 0.2
    got = likely_colors(p / p.sum(-1, keepdim=True), bins, (48, 32), 5, 5, L=50.0, k=2)
    assert got[1].ab == pytest.approx(ORANGE_AB, abs=1.0)
    assert 0 < got[0].ab[0] < 10  # between the two blue bins, nearer the likelier


def test_only_the_spots_own_disc_counts(bins):
    p = two_modes(bins)
    p[:, 6:] = two_modes(bins, shape=(8, 6), blue=0.3, orange=0.6)  # the right half: orange
    left = likely_colors(p, bins, (48, 32), 2, 16, L=50.0, k=1)
    right = likely_colors(p, bins, (48, 32), 45, 16, L=50.0, k=1)
    assert left[0].ab == pytest.approx(BLUE_AB, abs=1.0)
    assert right[0].ab == pytest.approx(ORANGE_AB, abs=1.0)


def test_fewer_suggestions_when_nothing_else_is_likely(bins):
    p = torch.zeros(4, 4, len(bins))
    p[..., bin_of(bins, BLUE_AB)] = 1.0
    assert len(likely_colors(p, bins, (16, 16), 3, 3, L=50.0, k=3)) == 1


@pytest.mark.parametrize("x, y", [(48, 5), (5, 32), (-1, 0), (0, -0.5)])
def test_a_spot_outside_the_photo_is_refused(bins, x, y):
    with pytest.raises(SpotError, match=r"is outside the photo \(48x32\); x must be 0 to 47"):
        likely_colors(two_modes(bins), bins, (48, 32), x, y, L=50.0)
    with pytest.raises(SpotError):
        spot_distribution(two_modes(bins), (48, 32), x, y)


def test_a_swatch_keeps_its_hue_where_the_screen_cannot_show_its_chroma():
    assert swatch_hex(50.0, (0.0, 0.0)) == "#777777"
    # far outside sRGB at this lightness: the same hue, less chroma, never a clipped other hue
    lab = rgb_to_lab_t(torch.tensor(rgb(swatch_hex(5.0, (0.0, -100.0)))).view(3, 1, 1) / 255)
    a, b = lab.flatten()[1:].tolist()
    assert b < -20 and abs(a) < 0.4 * abs(b)
    assert 44 < lab.flatten()[0] < 46  # a near-black spot's swatch is shown at L 45


def test_the_distribution_of_a_class_model_sums_to_one(bins):
    from pix2color.models.encoder_unet import MobileNetClassUNet, MobileNetUNet

    torch.manual_seed(0)
    G = MobileNetClassUNet(decoder_channels=(32, 16, 16, 8, 8, 8)).eval()
    probs = class_distribution(G, torch.rand(1, 36, 52) * 100)
    assert probs.shape == (9, 13, len(G.bins))
    assert torch.allclose(probs.sum(-1), torch.ones(9, 13), atol=1e-5)
    with pytest.raises(ValueError, match="needs a colour-class model|not a distribution"):
        class_distribution(
            MobileNetUNet(decoder_channels=(32, 16, 16, 8, 8, 8)), torch.rand(1, 8, 8)
        )


@pytest.mark.weights
def test_the_suggestion_model_loads_and_is_not_offered_for_colouring(monkeypatch):
    from pix2color.models.io import installed_models, load_generator, suggestion_model

    monkeypatch.delenv("PIX2COLOR_MODELS", raising=False)
    folder = suggestion_model()
    assert folder == ROOT / "models" / "suggest" / "colour-classes"
    assert "colour-classes" not in installed_models()
    G, info = load_generator(folder)
    assert info["config"]["head"] == "classes" and len(G.bins) == 261
    probs = class_distribution(G, torch.linspace(20, 80, 64 * 48).view(1, 48, 64))
    assert probs.shape == (12, 16, 261)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "suggestions only" in card and "never for scores" in card
    assert json.loads((folder / "config.json").read_text())["architecture"] == "mobilenet_unet"
