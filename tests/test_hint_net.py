"""The guided-colour network (HintUNet): its start, its inputs, its training and inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.data.dataset import GuidanceSimulation, GuidedCenterCrops, GuidedCrops
from pix2color.errors import UsageError
from pix2color.guide.maps import POINT_CHANNELS, REFERENCE_VALUES, point_maps, reference_histogram
from pix2color.guide.points import Point
from pix2color.guide.propagate import color_ab, propagate
from pix2color.inference.colorizer import Colorizer
from pix2color.models import HintUNet, MobileNetUNet
from pix2color.models.io import load_generator, save_pretrained
from pix2color.train import fit
from pix2color.train.config import ConfigError
from pix2color.train.recipe import load_config
from pix2color.train.setup import build_models, init_generator
from tests.conftest import ROOT, real_photo

TINY = {"decoder_channels": (16, 16, 8, 8, 8, 8), "pretrained": False}


@pytest.fixture
def auto_model(tmp_path):
    """A tiny automatic model with a calibrated gain, saved."""
    torch.manual_seed(0)
    G = MobileNetUNet(**TINY, ab_gain=1.3).eval()
    save_pretrained(G, tmp_path / "auto")
    return G, tmp_path / "auto"


def test_fresh_hint_net_from_an_automatic_model_returns_its_colour_without_guidance(auto_model):
    G, folder = auto_model
    H = HintUNet(**TINY)
    fresh = init_generator(H, folder)
    assert fresh and all(k.startswith(("refine.", "reference_mlp.")) for k in fresh)
    assert H.ab_gain == 1.3 and H.config["ab_gain"] == 1.3  # the automatic model's, exactly
    H.eval()
    L = torch.rand(2, 1, 40, 36) * 2 - 1
    with torch.no_grad():
        auto = G(L)
        assert torch.equal(H(L), auto)
        zeros = torch.zeros(2, POINT_CHANNELS, 40, 36)
        ref = reference_histogram(torch.randn(2, 20, 20) * 30)[None].expand(2, -1)
        assert torch.equal(H(L, zeros, ref), auto)  # the reference's FiLM starts at zero too


POINTS = [(10.0, 12.0, 2.0), (40.0, 50.0, 2.0), (55.0, 8.0, 1.0)]
POINT_COLORS = [(200, 30, 30), (30, 40, 200), (20, 160, 40)]


def three_points(G, **options):
    """The astronaut at 64x64 with three colour points: its L (1, 64, 64) in network units,
    G's automatic ab, the classical propagation of the points over it (both in Lab units), and
    the points' point maps."""
    from pix2color.color.lab import denormalize_L, rgb_to_network

    rgb = np.asarray(Image.fromarray(real_photo("astronaut")).resize((64, 64)))
    L, _ = rgb_to_network(torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1) / 255)
    with torch.no_grad():
        auto = G(L[None])[0] * 110
    classical = propagate(denormalize_L(L), auto, POINTS, POINT_COLORS, **options)
    return L, auto, classical, point_maps(denormalize_L(L), POINTS, color_ab(POINT_COLORS))


def test_fresh_hint_net_with_points_is_close_to_the_classical_propagation(auto_model):
    G, folder = auto_model
    H = HintUNet(**TINY)
    init_generator(H, folder)
    H.eval()
    L, auto, classical, maps = three_points(G)
    with torch.no_grad():
        ours = H(L[None], maps[None])[0] * 110
    far = (classical - auto).abs().mean()
    assert far > 3  # the points change the colour...
    assert (ours - classical).abs().mean() < 0.25 * far  # ... and the start is about classical


def test_classical_base_starts_exactly_at_the_classical_propagation(auto_model):
    G, folder = auto_model
    H = HintUNet(**TINY, base="classical", refine_layers=4, point_summary=True)
    fresh = init_generator(H, folder)
    assert any(k.startswith("summary_mlp.") for k in fresh)
    H.eval()
    L, auto, classical, maps = three_points(G)
    with torch.no_grad():
        ours = H(L[None], maps[None])[0] * 110
        assert torch.equal(H(L[None]), G(L[None]))  # no points: the automatic colour exactly
    assert (classical - auto).abs().mean() > 3  # the points change the colour...
    assert (ours - classical).abs().max() < 0.05  # ... exactly as the classical propagation
    far = HintUNet(**TINY, base="classical", base_pull=1e-6)
    init_generator(far, folder)
    with torch.no_grad():
        further = far.eval()(L[None], maps[None])[0] * 110
    _, _, reach, _ = three_points(G, pull=1e-6)
    assert (further - reach).abs().max() < 0.05 and (further - ours).abs().mean() > 1


def test_nonlocal_shift_carries_the_points_change_by_likeness():
    H = HintUNet(**TINY, base="classical", nonlocal_points=True).eval()
    L = torch.zeros(1, 1, 32, 40)
    feats = torch.zeros(1, 16 // 2, 32, 40)  # TINY's last decoder width is 8
    auto = torch.zeros(1, 2, 32, 40)
    none = point_maps(np.full((32, 40), 50.0, np.float32), [], np.zeros((0, 2)))[None]
    one = point_maps(np.full((32, 40), 50.0, np.float32), [(5.0, 5.0, 1.0)], np.array([[44.0, 0]]))
    with torch.no_grad():
        assert torch.equal(H.nonlocal_shift(feats, L, none, auto), torch.zeros(1, 2, 32, 40))
        torch.nn.init.zeros_(H.point_query.weight)  # every cell looks alike...
        H.point_null.fill_(-1e4)  # ... and "no match" is never chosen: the change goes everywhere
        shift = H.nonlocal_shift(feats, L, one[None], auto)
        assert torch.allclose(shift[0, 0], torch.full((32, 40), 0.4), atol=1e-4)
        assert shift[0, 1].abs().max() < 1e-6
        H.point_null.fill_(1e4)  # "no match" always: nothing moves
        assert H.nonlocal_shift(feats, L, one[None], auto).abs().max() < 1e-6


def test_a_nonlocal_model_made_from_a_guided_one_starts_as_it(auto_model, tmp_path):
    G, folder = auto_model
    H = HintUNet(**TINY, base="classical", refine_layers=3)
    init_generator(H, folder)
    torch.manual_seed(2)
    torch.nn.init.normal_(H.refine[-1].weight, std=0.1)  # a guided model that has learned
    save_pretrained(H, tmp_path / "guided")
    N = HintUNet(**TINY, base="classical", refine_layers=3, nonlocal_points=True)
    fresh = init_generator(N, tmp_path / "guided")
    assert all(k.startswith(("nonlocal_in.", "point_")) for k in fresh)
    L, _, _, maps = three_points(G)
    with torch.no_grad():
        assert torch.equal(N.eval()(L[None], maps[None]), H.eval()(L[None], maps[None]))


def test_points_summary_is_zero_without_points_and_reads_the_patches():
    from pix2color.models.encoder_unet import SUMMARY_VALUES, summarise_points

    L = np.full((20, 30), 50.0, np.float32)
    none = point_maps(L, [], np.zeros((0, 2)))[None]
    auto = torch.full((1, 2, 20, 30), 0.1)
    assert torch.equal(summarise_points(none, auto), torch.zeros(1, SUMMARY_VALUES))
    one = point_maps(L, [(5.0, 5.0, 0.0)], np.array([[55.0, 0.0]]))[None]
    s = summarise_points(one, auto)[0]
    assert torch.allclose(s[:2], torch.tensor([0.5, 0.0]))  # the truth's mean ab (network units)
    assert torch.allclose(s[2:4], torch.tensor([0.1, 0.1]))  # the automatic ab there
    assert torch.allclose(s[4:6], torch.tensor([0.4, -0.1]))  # their difference
    assert torch.isclose(s[8], torch.tensor((1 / 600) ** 0.5))  # one pixel of 600


def test_hint_maps_spread_from_points_and_are_zero_without():
    L = np.full((32, 32), 50.0, np.float32)
    L[:, 16:] = 90.0  # an edge down the middle
    assert point_maps(L, [], np.zeros((0, 2))).abs().sum() == 0
    maps = point_maps(L, [(4.0, 16.0, 1.0)], np.array([[40.0, -20.0]]))
    assert maps.shape == (POINT_CHANNELS, 32, 32)
    assert maps[5, 16, 4] == 1 and maps[5].sum() == 5  # the disc of radius 1
    assert maps[2, 16, 4] > 0.9 and maps[2, 16, 10] > maps[2, 16, 24] * 5  # stops at the edge
    assert torch.allclose(maps[3:5, 16, 4], torch.tensor([40 / 110, -20 / 110]))


def test_reference_histogram_sums_to_one_and_marks_presence():
    h = reference_histogram(torch.randn(2, 30, 30) * 40)
    assert h.shape == (REFERENCE_VALUES,)
    assert torch.isclose(h[:-1].sum(), torch.tensor(1.0)) and h[-1] == 1


def test_simulated_guidance_is_deterministic_per_seed_epoch_and_index():
    photos = [real_photo(n)[:120, :150] for n in ("astronaut", "coffee", "chelsea")]
    sim = GuidanceSimulation(p_zero=0.2, max_points=20, p_reference=0.5)
    a = GuidedCrops(photos, guidance=sim, crop=32, seed=1)
    b = GuidedCrops(photos, guidance=sim, crop=32, seed=1)
    for i in range(3):
        for x, y in zip(a[i], b[i], strict=True):
            assert torch.equal(x, y)
    L, ab, maps, ref = a[0]
    assert maps.shape == (POINT_CHANNELS, 32, 32) and ref.shape == (REFERENCE_VALUES,)
    a.set_epoch(1)
    assert not all(torch.equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    # across epochs and photos: some crops without points, some with; some references
    counts, refs = [], []
    for epoch in range(12):
        a.set_epoch(epoch)
        for i in range(3):
            _, _, m, r = a[i]
            counts.append(int(m[5].sum() > 0))
            refs.append(int(r[-1]))
    assert 0 < sum(counts) < len(counts) and 0 < sum(refs) < len(refs)
    val = GuidedCenterCrops(photos, size=32, n_points=4)
    assert torch.equal(val[1][2], val[1][2]) and val[1][2][5].sum() > 0


def test_config_validates_hint_keys(photo_root):
    tiny = ROOT / "configs" / "tiny.toml"
    with pytest.raises(ConfigError, match="model.hints=true needs model.generator"):
        load_config(tiny, ["model.hints=true"])
    with pytest.raises(ConfigError, match="psnr_hints.*model.hints=true"):
        load_config(tiny, ["train.early_stop_metric=psnr_hints"])
    with pytest.raises(ConfigError, match="data.hint_p_zero"):
        load_config(tiny, ["data.hint_p_zero=1.5"])
    cfg = load_config(ROOT / "configs" / "hint-net.toml")
    assert cfg.model.hints and cfg.train.early_stop_metric.endswith("_hints")
    with pytest.raises(ConfigError, match="model.hint_base"):
        load_config(ROOT / "configs" / "hint-net.toml", ["model.hint_base=exact"])
    with pytest.raises(ConfigError, match="model.hint_pull"):
        load_config(ROOT / "configs" / "hint-net.toml", ["model.hint_pull=0"])
    with pytest.raises(ConfigError, match="model.hint_refine_layers"):
        load_config(ROOT / "configs" / "hint-net.toml", ["model.hint_refine_layers=1"])
    cfg = load_config(ROOT / "configs" / "hint-net-classical.toml")
    assert cfg.model.hint_base == "classical" and cfg.train.freeze_automatic


HINT_RUN = (
    "model.generator=mobilenet_unet", "model.pretrained=false", "model.hints=true",
    "data.crop=32", "data.load_short_side=48", "train.epochs=1",
    "train.early_stop_metric=psnr_hints", "data.val_hint_points=5",
)  # fmt: skip


def test_training_feeds_the_hints_and_they_learn(tiny_config, tmp_path):
    cfg = tiny_config(*HINT_RUN, "train.lr_g=1e-3")
    summary = fit(cfg, tmp_path / "run", progress=False)
    assert summary["epochs_run"] == 1
    assert "gain" not in summary  # it keeps the gain it was made with: no calibration
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "psnr_hints" in header and "val_l1_hints" in header
    G, _ = load_generator(tmp_path / "run" / "model")
    assert isinstance(G, HintUNet)
    # the zero-initialised layers got gradients: they are no longer zero
    assert G.refine[2].weight.abs().sum() > 0
    assert G.reference_mlp[2].weight.abs().sum() > 0


def test_the_classical_recipe_trains_and_saves_its_shape(tiny_config, tmp_path):
    cfg = tiny_config(
        *HINT_RUN, "train.lr_g=1e-3", "model.hint_base=classical", "model.hint_refine_layers=3",
        "model.hint_point_summary=true", "model.hint_nonlocal=true",
    )  # fmt: skip
    fit(cfg, tmp_path / "run", progress=False)
    G, _ = load_generator(tmp_path / "run" / "model")
    assert G.base == "classical" and len(G.refine) == 5 and G.summary_mlp is not None
    assert G.summary_mlp[2].weight.abs().sum() > 0  # the points' summary learned
    assert G.nonlocal_in.weight.abs().sum() > 0  # and the input of the change by likeness


def test_freeze_automatic_keeps_the_automatic_colour(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="freeze_automatic=true needs"):
        tiny_config("train.freeze_automatic=true")
    cfg = tiny_config(*HINT_RUN, "train.lr_g=1e-3", "train.freeze_automatic=true")
    fit(cfg, tmp_path / "run", progress=False)
    G, _ = load_generator(tmp_path / "run" / "model")
    torch.manual_seed(cfg.train.seed)  # what start_run built before training
    start, _ = build_models(cfg.model)
    mine = G.state_dict()
    for k, v in start.state_dict().items():
        if not k.startswith(("refine.", "reference_mlp.")):
            assert torch.equal(mine[k], v), k  # weights and BatchNorm statistics unchanged
    assert not torch.equal(mine["refine.2.weight"], start.state_dict()["refine.2.weight"])


def test_hint_net_learns_to_use_points_on_one_photo():
    """Overfit: with a frozen automatic colour, a few steps make the points help."""
    torch.manual_seed(0)
    photos = [np.asarray(Image.fromarray(real_photo("coffee")).resize((48, 40)))]
    sim = GuidanceSimulation(p_zero=0.0, max_points=10, max_radius=2, p_reference=0.0)
    data = GuidedCrops(photos, guidance=sim, crop=32, scale=(0.5, 1.0), seed=0)
    H = HintUNet(**TINY)
    opt = torch.optim.Adam([*H.refine.parameters()], lr=3e-3)
    val = GuidedCenterCrops(photos, size=32, n_points=10)
    L, ab, maps, ref = (t[None] for t in val[0])

    def error() -> float:
        with torch.no_grad():
            return (H(L, maps, ref) - ab).abs().mean().item()

    H.eval()  # the automatic part (BatchNorm included) stays as it is; only the refiner learns
    before = error()
    for step in range(40):
        data.set_epoch(step)
        batch = [torch.stack(t) for t in zip(*(data[0] for _ in range(1)), strict=True)]
        loss = (H(batch[0], *batch[2:]) - batch[1]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert error() < before * 0.9


def test_colorizer_uses_the_learned_inputs_and_a_reference(auto_model, tmp_path):
    _, folder = auto_model
    H = HintUNet(**TINY)
    init_generator(H, folder)
    torch.manual_seed(1)
    torch.nn.init.normal_(H.reference_mlp[2].weight, std=0.5)  # a reference that matters
    save_pretrained(H, tmp_path / "hint")
    c = Colorizer.from_pretrained(tmp_path / "hint", size=32, backend="torch")
    assert c.guided
    img = Image.fromarray(real_photo("astronaut")).resize((48, 48))
    plain = np.asarray(c(img))
    pointed = np.asarray(c(img, points=[Point(10, 10, (250, 20, 20), 2)]))
    assert np.abs(pointed.astype(int) - plain).max() > 10
    ref = Image.fromarray(real_photo("coffee"))
    assert np.abs(np.asarray(c(img, reference=ref)).astype(int) - plain).max() > 0


def test_reference_errors_are_clear(auto_model, tmp_path):
    H = HintUNet(**TINY)
    save_pretrained(H, tmp_path / "hint")
    c = Colorizer.from_pretrained(tmp_path / "hint", size=32, backend="torch")
    with pytest.raises(UsageError, match="reference photo"):
        c.with_reference(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    with pytest.raises(UsageError, match="bad.jpg"):
        c.with_reference(bad)
    gray = Image.new("RGB", (20, 20), (128, 128, 128))
    with pytest.raises(UsageError, match="no colour"):
        c.with_reference(gray)


def test_an_automatic_model_takes_the_classical_transfer_a_guided_one_its_input(auto_model):
    """The reference reaches a HintUNet as its histogram input, never as the classical
    transfer; an automatic model gets the transfer (tests/test_reference.py)."""
    _, folder = auto_model
    ref = Image.fromarray(real_photo("coffee"))
    auto = Colorizer.from_pretrained(folder, size=32, backend="torch").with_reference(ref)
    assert not auto.guided and auto.reference is not None
    H = HintUNet(**TINY)
    init_generator(H, folder)  # a fresh HintUNet: the reference's FiLM starts at zero
    img = Image.fromarray(real_photo("astronaut")).resize((48, 48))
    c = Colorizer.from_pretrained(folder, size=32, backend="torch")
    g = Colorizer(H, size=32, backend="torch")
    assert np.array_equal(np.asarray(g(img, reference=ref)), np.asarray(c(img)))
