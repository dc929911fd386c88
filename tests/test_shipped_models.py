"""Every model that ships with pix2color loads, colours a photo, and has a true model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pix2color.color.lab import rgb_to_lab
from pix2color.inference.colorizer import Colorizer
from pix2color.models.io import BUNDLED_DIR, CARD_FILE, CONFIG_FILE, installed_models
from pix2color.train.recipe import load_config
from tests.conftest import ROOT, real_photo

SHIPPED = {
    "default": BUNDLED_DIR,
    "mobilenet-l1": ROOT / "models",
    "pix2pix-scratch": ROOT / "models",
}


def test_the_shipped_models_are_the_installed_ones_in_a_checkout(monkeypatch):
    monkeypatch.delenv("PIX2COLOR_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/nonexistent")  # no user folder
    found = installed_models()
    assert {name: path.parent for name, path in found.items()} == SHIPPED


@pytest.mark.weights
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_model_colours_a_photo_and_its_card_is_true(name):
    folder = SHIPPED[name] / name
    rgb = real_photo("chelsea")[::2, ::2]  # (150, 226, 3)
    gray = Image.fromarray(rgb).convert("L")
    out = Colorizer.from_pretrained(folder)(gray)
    assert out.size == gray.size and out.mode == "RGB"
    lab = rgb_to_lab(np.asarray(out))
    truth_L = rgb_to_lab(np.asarray(gray.convert("RGB")))[..., 0]
    assert np.abs(lab[..., 0] - truth_L).mean() < 1.0  # the photo's own luminance is kept
    chroma = np.hypot(lab[..., 1], lab[..., 2]).mean()
    assert chroma > 3.0, f"{name}: mean chroma {chroma:.1f}, the output is nearly grey"

    info = json.loads((folder / CONFIG_FILE).read_text())
    meta = info["metadata"]
    assert meta["recipe"] == name  # made by the recipe named after it, which still loads
    recipe = load_config(ROOT / "configs" / f"{name}.toml")
    card = (folder / CARD_FILE).read_text()
    assert card.startswith(f"# Model card: `{name}`")
    assert {"psnr", "ssim"} <= set(meta["val_metrics"])
    assert info["architecture"] == recipe.model.generator  # both regress ab: no class head
    if "ab_gain" in info["config"]:  # the card states the calibrated gain the weights carry
        assert f"{info['config']['ab_gain']}" in card
