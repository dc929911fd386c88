"""Shared fixtures: real photos from scikit-image's wheel, tiny prepared folders, tiny models."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from pix2color.train import build_models
from pix2color.train.recipe import load_config

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right")


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory):
    """The onnxruntime twins (models/onnx_cache.py) of this session's models: made once per
    session in a fresh folder, never in the user's ~/.cache (CLI subprocesses inherit it)."""
    import os

    before = os.environ.get("PIX2COLOR_CACHE")
    os.environ["PIX2COLOR_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("PIX2COLOR_CACHE", None)
    else:
        os.environ["PIX2COLOR_CACHE"] = before


@pytest.fixture(autouse=True)
def _quiet_and_deterministic():
    torch.manual_seed(0)
    logging.getLogger("pix2color").setLevel(logging.WARNING)
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: Inception is as fast on one, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def real_photo(name: str = "astronaut") -> np.ndarray:
    """A real colour photo from scikit-image, (H, W, 3) uint8."""
    if name.startswith("motorcycle_"):
        return skdata.stereo_motorcycle()[0 if name.endswith("left") else 1]
    return getattr(skdata, name)()


@pytest.fixture(scope="session")
def photo_root(tmp_path_factory) -> Path:
    """A tiny prepared folder: train/ and val/ with small crops of real photos."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3), ("test", 2)):
        (root / split).mkdir()
        for i in range(n):
            rgb = real_photo(PHOTOS[(i + (3 if split != "train" else 0)) % len(PHOTOS)])
            h, w = rgb.shape[:2]
            y, x = rng.integers(0, h - 96), rng.integers(0, w - 120)
            crop = rgb[y : y + 96, x : x + 120]
            Image.fromarray(crop).resize((60, 48)).save(root / split / f"{split}{i}.png")
    return root


@pytest.fixture
def tiny_config(photo_root):
    """The tiny recipe pointed at the tiny photo folder, 2 epochs of 2 steps."""
    return lambda *overrides: load_config(
        ROOT / "configs" / "tiny.toml",
        [f'data.root="{photo_root}"', "train.steps_per_epoch=2", *overrides],
    )


@pytest.fixture
def tiny_models():
    cfg = load_config(ROOT / "configs" / "tiny.toml")
    return build_models(cfg.model)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny random pix2pix U-Net saved as a shipped model (a test module may define its own)."""
    from pix2color.models.io import save_pretrained
    from pix2color.models.unet import UNetGenerator

    torch.manual_seed(0)
    return save_pretrained(
        UNetGenerator(base_channels=8, depth=4, max_channels=16).eval(),
        tmp_path_factory.mktemp("m") / "tiny",
    )
