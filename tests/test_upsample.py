import pytest
import torch
import torch.nn.functional as F

from pix2color.color.upsample import upsample_ab


def _edge_photo(H=192, W=256, h=48, w=64):
    """A sharp vertical edge: dark red on the left, light blue on the right; and its small copy."""
    L = torch.full((H, W), 40.0)
    L[:, W // 2 + 3 :] = 70.0
    ab = torch.zeros(2, H, W)
    ab[0, :, : W // 2 + 3] = 60.0
    ab[1, :, W // 2 + 3 :] = -50.0
    small = dict(size=(h, w), mode="bilinear", antialias=True)
    return L, ab, F.interpolate(L[None, None], **small)[0], F.interpolate(ab[None], **small)[0]


def test_bilinear_is_plain_interpolation():
    L, _, L_small, ab_small = _edge_photo()
    up = upsample_ab(ab_small, L_small, L, mode="bilinear")
    expected = F.interpolate(ab_small[None], size=L.shape, mode="bilinear", align_corners=False)
    assert torch.equal(up, expected[0])


def test_guided_colour_follows_the_full_size_edge():
    L, ab, L_small, ab_small = _edge_photo()
    near = slice(L.shape[1] // 2 - 8, L.shape[1] // 2 + 14)  # the columns around the edge
    err = {
        m: (upsample_ab(ab_small, L_small, L, mode=m) - ab)[:, :, near].abs().mean().item()
        for m in ("bilinear", "guided")
    }
    assert err["guided"] < 0.5 * err["bilinear"], err


def test_guided_keeps_smooth_colour_where_the_photo_is_flat():
    L = torch.full((96, 128), 55.0)
    y, x = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    ab_small = torch.stack([30 * torch.sin(x / 10), 20 * torch.cos(y / 8)])  # slow colour
    L_small = torch.full((1, 24, 32), 55.0)
    guided = upsample_ab(ab_small, L_small, L, mode="guided")
    bilinear = upsample_ab(ab_small, L_small, L, mode="bilinear")
    inside = (slice(None), slice(12, -12), slice(12, -12))  # away from the cut border windows
    assert (guided - bilinear)[inside].abs().max() < 1.0  # Lab units: invisible


def test_an_unknown_upsampling_is_refused():
    L, _, L_small, ab_small = _edge_photo()
    with pytest.raises(ValueError, match="bilinear"):
        upsample_ab(ab_small, L_small, L, mode="bicubic")
