import pytest

from pix2color.config import ConfigError, load_config
from tests.conftest import ROOT


def test_recipes_load():
    for path in (ROOT / "configs").glob("*.toml"):
        cfg = load_config(path)
        assert cfg.name == path.stem


def test_overrides_are_typed():
    cfg = load_config(
        ROOT / "configs/tiny.toml",
        ["train.epochs=7", "train.lr_g=1e-3", "train.lr_schedule=plateau", "data.flip=false"],
    )
    assert cfg.train.epochs == 7 and cfg.train.lr_g == 1e-3
    assert cfg.train.lr_schedule == "plateau" and cfg.data.flip is False


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.epoch=3", r"unknown key\(s\) \['epoch'\] in \[train\]"),
        ("optim.lr=3", "unknown section"),
        ("train.epochs=many", "expected int"),
        ("epochs", "expected section.key=value"),
    ],
)
def test_bad_overrides_fail_loudly(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(ROOT / "configs/tiny.toml", [override])


def test_resolved_config_round_trips_through_toml(tmp_path):
    cfg = load_config(ROOT / "configs/pix2pix-original.toml", ["train.seed=3"])
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert load_config(tmp_path / "c.toml") == cfg
