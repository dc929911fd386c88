import csv
import os
import subprocess
import sys

import pytest
import torch

from pix2color.models.io import load_generator
from pix2color.models.patchgan import GANLoss
from pix2color.train import fit, train_step
from pix2color.train.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import ROOT


def _params(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _changed(before, m):
    return [k for k, v in m.state_dict().items() if not torch.equal(before[k], v)]


def _step(tiny_models, **kw):
    G, D = tiny_models
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    L, ab = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 2, 32, 32) - 0.5
    g0, d0 = _params(G), _params(D)
    losses = train_step(G, D, opt_g, opt_d, GANLoss(), L, ab, **kw)
    return G, D, g0, d0, losses


def test_one_train_step_changes_both_networks(tiny_models):
    G, D, g0, d0, losses = _step(tiny_models)
    assert _changed(g0, G) and _changed(d0, D)
    assert all(v == v for v in losses.values())  # no NaN: every loss was computed
    assert all(p.requires_grad for p in D.parameters())  # D is trainable again after G's step


def test_before_the_discriminator_starts_it_is_not_touched(tiny_models):
    G, D, g0, d0, losses = _step(tiny_models, use_gan=False, train_d=False)
    assert _changed(g0, G)
    assert _changed(d0, D) == []  # weights and BatchNorm statistics alike
    assert losses["loss_d"] != losses["loss_d"]  # NaN: no D loss was computed


def test_delayed_discriminator_in_a_run(tiny_config, tmp_path):
    fit(tiny_config("train.d_start_epoch=2", "train.epochs=1"), tmp_path / "r", progress=False)
    torch.manual_seed(tiny_config().train.seed)
    from pix2color.train import build_models

    _, D_init = build_models(tiny_config().model)
    after = load_checkpoint(tmp_path / "r" / "last.pt")["D"]
    assert all(torch.equal(v, after[k]) for k, v in D_init.state_dict().items())
    fit(
        tiny_config("train.d_start_epoch=2", "train.epochs=2"),
        tmp_path / "r",
        resume=True,
        progress=False,
    )
    after2 = load_checkpoint(tmp_path / "r" / "last.pt")["D"]
    assert any(not torch.equal(v, after2[k]) for k, v in D_init.state_dict().items())
    rows = list(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert [r["d_active"] for r in rows] == ["0", "1"]


def test_early_stopping_on_the_watched_metric(tiny_config, tmp_path, monkeypatch):
    import pix2color.train.loop as train

    scripted = iter([0.5, 0.4, 0.45, 0.41, 0.3, 0.2])
    real_validate = train.validate

    def fake_validate(*a, **k):
        metrics, grid = real_validate(*a, **k)
        return {**metrics, "val_l1": next(scripted)}, grid

    monkeypatch.setattr(train, "validate", fake_validate)
    s = fit(tiny_config("train.epochs=6", "train.patience=2"), tmp_path / "r", progress=False)
    assert s["stopped_early"] and s["epochs_run"] == 4
    assert s["best_epoch"] == 2 and s["best_metric"] == 0.4
    best = load_checkpoint(tmp_path / "r" / "best.pt")
    assert best["epoch"] == 2


def test_resume_after_a_crash_gives_the_uninterrupted_result(tiny_config, tmp_path):
    cfg = tiny_config("train.epochs=3", "train.d_start_epoch=2")
    fit(cfg, tmp_path / "straight", progress=False)

    def crash(epoch, step):
        if epoch == 3 and step == 1:
            raise KeyboardInterrupt  # killed in the middle of the last epoch

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "crashed", progress=False, on_step=crash)
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")["epoch"] == 2
    fit(cfg, tmp_path / "crashed", resume=True, progress=False)

    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "crashed" / "last.pt")
    for net in ("G", "D"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k} differs after resume"
    ra = list(csv.DictReader(open(tmp_path / "straight" / "metrics.csv")))
    rb = list(csv.DictReader(open(tmp_path / "crashed" / "metrics.csv")))
    skip = {"seconds", "images_per_second"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in ra] == [
        {k: v for k, v in r.items() if k not in skip} for r in rb
    ]


def test_run_folder_contents_and_refusal_to_overwrite(tiny_config, tmp_path):
    fit(tiny_config(), tmp_path / "r", progress=False)
    names = {p.relative_to(tmp_path / "r").as_posix() for p in (tmp_path / "r").rglob("*")}
    for f in (
        "config.toml",
        "metrics.csv",
        "loss.png",
        "metrics.png",
        "last.pt",
        "best.pt",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
        "model/model.safetensors",
        "model/config.json",
    ):
        assert f in names
    with pytest.raises(FileExistsError, match="--resume"):
        fit(tiny_config(), tmp_path / "r", progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(tiny_config(), tmp_path / "other", resume=True, progress=False)


def test_checkpoint_round_trip_and_loading_as_a_model(tiny_config, tmp_path):
    fit(tiny_config(), tmp_path / "r", progress=False)
    ckpt = load_checkpoint(tmp_path / "r" / "best.pt")
    save_checkpoint(tmp_path / "copy.pt", ckpt)
    again = load_checkpoint(tmp_path / "copy.pt")
    assert again["epoch"] == ckpt["epoch"] and again["config"] == ckpt["config"]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, then renamed
    G1, _ = load_generator(tmp_path / "r" / "best.pt")
    G2, _ = load_generator(tmp_path / "r" / "model")
    x = torch.rand(1, 1, 40, 40) * 2 - 1
    assert torch.equal(G1(x), G2(x))


DDP_SCRIPT = """
import hashlib, os, sys
import torch
import pix2color.train as train
import pix2color.train.setup as setup
from pix2color.train.recipe import load_config

built = {}
real_build = setup.build_models
def spy(cfg):
    built["G"], built["D"] = real_build(cfg)
    return built["G"], built["D"]
setup.build_models = spy
cfg = load_config(sys.argv[1], sys.argv[3:])
train.fit(cfg, sys.argv[2], progress=False)
h = hashlib.sha256()
for v in built["G"].state_dict().values():
    h.update(v.detach().cpu().numpy().tobytes())
open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.sha"), "w").write(h.hexdigest())
"""


@pytest.mark.slow
def test_distributed_data_parallel_on_cpu(photo_root, tmp_path):
    """torchrun, 2 processes, gloo: one run folder, and G ends identical on both ranks."""
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_port=29533", str(script), str(ROOT / "configs/tiny.toml"), str(run_dir),
        f'data.root="{photo_root}"', "train.epochs=2", "train.num_threads=1",
        "train.d_start_epoch=2",
    ]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2
    assert len(list(csv.DictReader(open(run_dir / "metrics.csv")))) == 2
    h0, h1 = (run_dir / "rank0.sha").read_text(), (run_dir / "rank1.sha").read_text()
    assert h0 == h1  # gradients were averaged across processes: the replicas never diverged


def test_resume_with_another_model_names_the_keys_and_leaves_the_run_as_it_was(
    tiny_config, tmp_path, capsys
):
    from pix2color.cli import main

    run = tmp_path / "r"
    fit(tiny_config("train.epochs=1"), run, progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    recipe = tmp_path / "recipe.toml"
    recipe.write_text((run / "config.toml").read_text())
    args = ["train", str(recipe), "--run-dir", str(run), "--resume", "-q"]
    code = main([*args, "model.base_channels=16", "model.depth=4", "train.epochs=2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1  # one line, no traceback
    assert "model.base_channels: 8 -> 16" in err and "model.depth: 3 -> 4" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # the [train] table may change: more epochs continue the same run
    assert main([*args, "train.epochs=2"]) == 0
    assert load_checkpoint(run / "last.pt")["epoch"] == 2


def test_a_bad_value_fails_before_anything_is_written(tiny_config, tmp_path, capsys):
    from pix2color.cli import main

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tiny_config().to_toml())
    for bad in ("train.lr_g=-0.001", "train.lambda_l1=-100", "data.crop=4096"):
        code = main(["train", str(recipe), "--run-dir", str(tmp_path / "r"), bad, "-q"])
        assert code == 2 and bad.split("=")[0] in capsys.readouterr().err
        assert not (tmp_path / "r").exists()
