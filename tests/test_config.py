import pytest

from pix2color.models.color_settings import TEMPERATURE_RANGE
from pix2color.models.io import installed_models
from pix2color.train.config import (
    AUTO_ON_OFF,
    DEVICES,
    EARLY_STOP_METRICS,
    GAN_MODES,
    GENERATORS,
    HEADS,
    LR_SCHEDULES,
    ConfigError,
    TrainConfig,
    validate_config,
)
from pix2color.train.recipe import load_config
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"


def test_recipes_load():
    for path in CONFIGS.glob("*.toml"):
        cfg = load_config(path)
        assert cfg.name == path.stem


# recipes whose model is not trained and shipped yet
UNSHIPPED = {"hint-net", "hint-net-classical", "hint-net-nonlocal"}


def test_each_model_recipe_names_a_shipped_model_and_starts_from_one():
    recipes = {p.stem for p in CONFIGS.glob("*.toml")} - {"base", "tiny"}
    assert recipes == {"default", "mobilenet-l1", "pix2pix-scratch", *UNSHIPPED}
    for name in recipes:
        assert name in UNSHIPPED or (installed_models()[name] / "MODEL_CARD.md").is_file()
        init_from = load_config(CONFIGS / f"{name}.toml").train.init_from
        assert not init_from or (ROOT / init_from).exists()


def test_overrides_are_typed():
    cfg = load_config(
        CONFIGS / "tiny.toml",
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
        load_config(CONFIGS / "tiny.toml", [override])


def test_resolved_config_round_trips_through_toml(tmp_path):
    cfg = load_config(CONFIGS / "pix2pix-scratch.toml", ["train.seed=3"])
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert load_config(tmp_path / "c.toml") == cfg


# ------------------------------------------------------------------ every value is checked
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.lr_g=0"], "train.lr_g=0.0: must be above 0"),
        (["train.lr_g=-0.001"], "train.lr_g=-0.001: must be above 0"),
        (["train.lr_d=0"], "train.lr_d=0.0: must be above 0"),
        (["train.lr_g=nan"], "train.lr_g=nan: must be a finite number"),
        (["train.lr_encoder=-1e-5"], "train.lr_encoder=-1e-05: must be at least 0"),
        (["train.lambda_l1=-100"], "train.lambda_l1=-100.0: must be at least 0"),
        (["train.lambda_class=-1"], "train.lambda_class=-1.0: must be at least 0"),
        (["train.epochs=0"], "train.epochs=0: must be at least 1"),
        (["train.batch_size=0"], "train.batch_size=0: must be at least 1"),
        (["train.d_every=0"], "train.d_every=0: must be at least 1"),
        (["train.patience=-1"], "train.patience=-1: must be at least 0"),
        (["train.steps_per_epoch=-1"], "train.steps_per_epoch=-1: must be at least 0"),
        (["train.label_smoothing=0.5"], r"train.label_smoothing=0.5: must be .* below 0.5"),
        (["train.class_rebalance=1.5"], "train.class_rebalance=1.5: must be .* at most 1"),
        (["train.beta1=1"], "train.beta1=1.0: must be .* below 1"),
        (["data.crop=4096"], "data.crop=4096: must not be above data.load_short_side=48"),
        (["data.crop=8"], "data.crop=8: must be at least 16"),
        (["data.scale_min=0"], "data.scale_min=0.0: must be above 0 and at most 1"),
        (["data.scale_max=1.5"], "data.scale_max=1.5: must be above 0 and at most 1"),
        (["data.scale_min=0.9", "data.scale_max=0.5"], "must not be above data.scale_max=0.5"),
        (['data.root=""'], "data.root='': give the folder"),
        (["model.depth=1"], "model.depth=1: must be at least 2"),
        (["model.dropout=1"], "model.dropout=1.0: must be .* below 1"),
        (['train.device="gpu"'], "train.device='gpu': use auto, cpu or cuda"),
        (['train.amp="yes"'], "train.amp='yes': use auto, on or off"),
        (['train.lr_schedule="step"'], "use none, plateau, linear or cosine"),
        (['train.gan_mode="wgan"'], "train.gan_mode='wgan': use vanilla or lsgan"),
        (['model.generator="resnet"'], "use unet or mobilenet_unet"),
        (['model.head="bins"'], "use regression or classes"),
        (
            ['train.early_stop_metric="fid"'],
            "use val_l1, psnr, ssim, lpips, dcf, val_l1_hints, psnr_hints or lpips_hints",
        ),
        (["train.early_stop_metric=lpips"], "set train.val_lpips=true"),
        (['model.head="classes"'], "needs model.generator='mobilenet_unet'"),
        (["train.lambda_class=1"], "needs model.head='classes'"),
        (["train.lr_encoder=1e-5"], "train.lr_encoder=1e-05 needs a pretrained encoder"),
        (
            ['model.generator="mobilenet_unet"', 'model.head="classes"', "train.lambda_l1=0"],
            "needs train.lambda_class or train.lambda_l1 above 0",
        ),
    ],
)
def test_values_that_cannot_train_fail_before_anything_runs(overrides, message):
    with pytest.raises(ConfigError, match=f"configs/tiny.toml: .*{message}"):
        load_config(CONFIGS / "tiny.toml", overrides)


def test_the_temperature_range_is_the_colour_settings_one():
    lo, hi = TEMPERATURE_RANGE
    for ok in (lo, hi):
        assert load_config(None, [f"model.temperature={ok}"]).model.temperature == ok
    for bad in (lo / 2, hi + 1):
        with pytest.raises(ConfigError, match=f"model.temperature={bad!r}: must be at least"):
            load_config(None, [f"model.temperature={bad}"])


@pytest.mark.parametrize(
    "key,allowed",
    [
        ("model.generator", GENERATORS),
        ("model.head", HEADS),
        ("train.gan_mode", GAN_MODES),
        ("train.lr_schedule", LR_SCHEDULES),
        ("train.early_stop_metric", EARLY_STOP_METRICS),
        ("train.amp", AUTO_ON_OFF),
        ("train.channels_last", AUTO_ON_OFF),
        ("train.device", DEVICES),
    ],
)
def test_every_allowed_value_loads(key, allowed):
    hints = ['model.generator="mobilenet_unet"', "model.hints=true"]
    needs = {
        "classes": ['model.generator="mobilenet_unet"'],
        "lpips": ["train.val_lpips=true"],
        "val_l1_hints": hints,
        "psnr_hints": hints,
        "lpips_hints": [*hints, "train.val_lpips=true"],
    }
    for value in allowed:
        cfg = load_config(None, [f'{key}="{value}"', *needs.get(value, [])])
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == value


def test_dataclasses_built_in_code_are_checked_too():
    with pytest.raises(ConfigError, match="train.lr_g=0: must be above 0"):
        TrainConfig(lr_g=0)
    validate_config(load_config(CONFIGS / "default.toml"))


# ------------------------------------------------------------------ recipes extend a base
def _write(folder, name, text):
    (folder / name).write_text(text)
    return folder / name


def test_a_base_is_merged_key_by_key_under_the_recipe(tmp_path):
    _write(tmp_path, "root.toml", 'name = "root"\n[data]\nval_size = 64\nflip = false\n')
    _write(tmp_path, "mid.toml", 'base = "root.toml"\n[data]\ncrop = 32\nload_short_side = 40\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    recipe = _write(
        sub, "mine.toml", 'base = "../mid.toml"\n[data]\ncrop = 24\n[train]\nepochs = 3\n'
    )
    cfg = load_config(recipe, ["data.val_size=48"])
    assert cfg.name == "mine"  # a base's name is not passed on
    assert (cfg.data.crop, cfg.data.load_short_side, cfg.data.flip) == (24, 40, False)
    assert cfg.data.val_size == 48 and cfg.train.epochs == 3
    resolved = _write(tmp_path, "resolved.toml", cfg.to_toml())
    assert "\nbase =" not in resolved.read_text() and load_config(resolved) == cfg


def test_the_shipped_recipes_share_their_data_through_base():
    for name in ("default", "mobilenet-l1", "pix2pix-scratch"):
        text = (CONFIGS / f"{name}.toml").read_text()
        assert 'base = "base.toml"' in text and 'root = "data/photos"' not in text
        assert load_config(CONFIGS / f"{name}.toml").data.root == "data/photos"


def test_a_missing_base_or_a_loop_is_refused(tmp_path):
    missing = _write(tmp_path, "a.toml", 'base = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match=r"a.toml: its base .*nowhere.toml does not exist"):
        load_config(missing)
    _write(tmp_path, "b.toml", 'base = "c.toml"\n')
    _write(tmp_path, "c.toml", 'base = "b.toml"\n')
    with pytest.raises(ConfigError, match=r"each other's base: .*b.toml -> .*c.toml -> .*b.toml"):
        load_config(tmp_path / "b.toml")
    with pytest.raises(ConfigError, match="base must be a file name"):
        load_config(_write(tmp_path, "d.toml", "base = 3\n"))
