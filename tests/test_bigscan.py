"""Big scans: the band-by-band full-resolution path gives the whole-image result, lean."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pix2color.color.lab import gray_to_L, lab_to_rgb_t, rgb_to_lab_t
from pix2color.color.rows import lab_rows_to_rgb8, levels_to_L, rgb8_to_L
from pix2color.color.upsample import BandColor, RowUpsampler, upsample_ab
from pix2color.inference.join import join_color, photo_L, photo_L_rows, small_L, working_shape
from pix2color.photo import Photo, photo_from_image
from tests.conftest import real_photo

ROOT = Path(__file__).resolve().parents[1]


def _photo(kind: str, H: int = 301, W: int = 407) -> Photo:
    """A real photo at an odd size (bands never divide it evenly) as grey, RGB, RGBA or 16-bit."""
    rgb = Image.fromarray(real_photo("astronaut")).resize((W, H))
    if kind == "grey":
        img = rgb.convert("L")
    elif kind == "grey16":
        levels = np.asarray(rgb.convert("L"), np.uint16) * 257 + np.arange(W, dtype=np.uint16) % 7
        img = Image.fromarray(levels)  # mode I;16, more than 256 levels
    elif kind == "rgba":
        img = rgb.convert("RGBA")
        img.putalpha(Image.fromarray((np.arange(H * W) % 251).reshape(H, W).astype(np.uint8)))
    else:
        img = rgb
    return photo_from_image(img)


def _color(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    """A smooth, saturated working-size colour (2, h, w) and the photo's small L (1, h, w)."""
    s = small_L(photo, 64)
    h, w = s.shape[-2:]
    y, x = torch.meshgrid(torch.arange(h) / h, torch.arange(w) / w, indexing="ij")
    return torch.stack([70 * torch.sin(6 * x), 60 * torch.cos(5 * y)]).numpy(), s


def _old_join(photo: Photo, ab: np.ndarray, s: np.ndarray, mode: str) -> np.ndarray:
    """The previous whole-image join: full-size float L and ab, lab_to_rgb_t, uint8 packing."""
    L, ab, s = torch.from_numpy(photo_L(photo)), torch.from_numpy(ab), torch.from_numpy(s)
    rgb = lab_to_rgb_t(torch.cat([L[None], upsample_ab(ab, s, L, mode=mode)]))
    return (rgb.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("kind", ["grey", "grey16", "rgb", "rgba"])
@pytest.mark.parametrize("mode", ["bilinear", "guided"])
def test_bands_give_the_whole_image_result(kind, mode):
    photo = _photo(kind)
    ab, s = _color(photo)
    whole = np.asarray(join_color(photo, ab, s, upsampling=mode, band_pixels=10**9))
    for band_pixels, workers in ((1, 1), (407 * 7, 2), (5000, 3)):  # 1 row; 7 rows; 12 rows
        banded = join_color(photo, ab, s, upsampling=mode, band_pixels=band_pixels, workers=workers)
        assert np.array_equal(np.asarray(banded), whole), (band_pixels, workers)
    # and the previous whole-image path (torch, float32 everywhere) within one level
    old = _old_join(photo, ab, s, mode)
    diff = np.abs(whole[..., :3].astype(np.int16) - old)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())
    if kind == "rgba":
        assert np.array_equal(whole[..., 3], photo.alpha)


def test_16_bit_bands_give_the_whole_image_result_and_the_8_bit_colour():
    photo = _photo("grey16")
    ab, s = _color(photo)
    whole = join_color(photo, ab, s, depth=16, band_pixels=10**9)
    banded = join_color(photo, ab, s, depth=16, band_pixels=407 * 7, workers=2)
    assert whole.dtype == np.uint16 and np.array_equal(banded, whole)
    eight = np.asarray(join_color(photo, ab, s), np.float32)
    assert np.abs(whole / 257.0 - eight).max() <= 1.0  # the same colour, finer


@pytest.mark.parametrize(
    "h, w, H, W", [(48, 64, 301, 407), (7, 5, 33, 1001), (256, 170, 257, 171), (3, 4, 1, 1)]
)
def test_row_upsampling_samples_where_f_interpolate_does(h, w, H, W):
    small = torch.randn(2, h, w) * 50
    ref = F.interpolate(small[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    up = RowUpsampler(small.numpy(), (H, W))
    for step in (1, 5, 64):  # every band boundary position
        got = np.concatenate([up.rows(r, min(r + step, H)) for r in range(0, H, step)], axis=1)
        assert np.abs(got - ref.numpy()).max() < 2e-3  # ab units: float rounding only


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_working_size_L_is_the_antialiased_downscale_of_the_full_L(kind):
    photo = _photo(kind)
    L = torch.from_numpy(photo_L(photo))
    size = working_shape(*L.shape, 64)
    ref = F.interpolate(L[None, None], size=size, mode="bilinear", antialias=True)[0]
    got = torch.from_numpy(small_L(photo, 64, workers=2))
    assert got.shape == ref.shape and (got - ref).abs().max() < 1e-3


def test_grey_tables_are_gray_to_L():
    g8 = np.arange(256, dtype=np.uint8)
    ref8 = gray_to_L(torch.from_numpy(g8.astype(np.float32) / 255.0)).numpy()
    assert np.abs(levels_to_L(g8) - ref8).max() < 1e-4
    g16 = np.arange(0, 65536, 13, dtype=np.uint16)
    ref16 = gray_to_L(torch.from_numpy(g16.astype(np.float32) / 65535.0)).numpy()
    assert np.abs(levels_to_L(g16) - ref16).max() < 1e-4


def test_rgb8_L_is_rgb_to_lab_t_L():
    rgb = real_photo("coffee")
    ref = rgb_to_lab_t(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)[0].numpy()
    assert np.abs(rgb8_to_L(rgb) - ref).max() < 1e-3


def test_an_8_bit_grey_photo_is_kept_as_8_bit_levels():
    photo = _photo("grey")
    assert photo.levels.dtype == np.uint8 and photo.rgb is None  # 1 byte a pixel, not 4


def test_peak_memory_of_a_big_photo_stays_under_40_bytes_a_pixel(tmp_path):
    """A 12 MP grey JPEG coloured end to end in a fresh process: RSS peak above the warmed-up
    process (model loaded, one small photo coloured) under 40 bytes per pixel."""
    photo = tmp_path / "big.jpg"
    y, x = np.mgrid[0:3000, 0:4000]
    Image.fromarray(((x // 7 + y // 5) % 256).astype(np.uint8)).save(photo, quality=90)
    script = textwrap.dedent(f"""
        import torch
        from PIL import Image
        from pix2color import Colorizer
        from pix2color.models.unet import UNetGenerator

        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024

        def reset():  # the peak from here on (Linux: writing 5 to clear_refs resets VmHWM)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")

        torch.manual_seed(0)
        c = Colorizer(UNetGenerator(base_channels=8, depth=4, max_channels=16), size=64)
        c(Image.new("L", (640, 480), 128)).save("{tmp_path}/small.png")
        reset()
        idle = hwm()
        c("{photo}").save("{tmp_path}/out.jpg", quality=95)
        print((hwm() - idle) / (4000 * 3000))
    """)
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    per_pixel = float(run.stdout.split()[-1])
    assert per_pixel < 40, f"{per_pixel:.1f} bytes per pixel above idle"


def _sixteen_bit_scan(path: Path, **save) -> np.ndarray:
    """A 16-bit grey scan (a smooth ramp with more than 256 levels) saved at `path`."""
    y, x = np.mgrid[0:120, 0:160]
    levels = (x * 400 + y * 9).astype(np.uint16)  # 0 .. 64,671: thousands of distinct levels
    Image.fromarray(levels).save(path, **save)
    return levels


def _L16(rgb16: np.ndarray) -> np.ndarray:
    return rgb_to_lab_t(
        torch.from_numpy(rgb16[..., :3].astype(np.float32) / 65535).permute(2, 0, 1)
    )[0].numpy()


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_a_16_bit_scan_comes_out_16_bit_with_its_levels(tmp_path, ext):
    tifffile = pytest.importorskip("tifffile")
    src = tmp_path / f"scan{ext}"
    levels = _sixteen_bit_scan(src, dpi=(600, 600))
    out = tmp_path / "out"
    model = str(_tiny_model(tmp_path))
    cli = ["-m", "pix2color.cli", "colorize", str(src), "-o", str(out), "-q", "--model", model]
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, *cli], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    written = out / src.name
    if ext == ".tif":
        rgb16 = tifffile.imread(written)
    else:
        rgb16 = _read_png16(written)
    assert rgb16.dtype == np.uint16 and rgb16.shape == (120, 160, 3)
    L = _L16(rgb16)
    L_in = gray_to_L(torch.from_numpy(levels.astype(np.float32) / 65535)).numpy()
    # the scan's own L, far below an 8-bit step (about 0.4) where the colour is in gamut (out
    # of gamut, near black and white, clipping moves L as in 8 bits)
    assert np.median(np.abs(L - L_in)) < 0.02
    assert len(np.unique(np.round(L, 3))) > 1000  # more than 256 levels survive
    with Image.open(written) as im:
        assert tuple(round(float(d)) for d in im.info["dpi"]) == (600, 600)


def test_depth_8_and_8_bit_formats_stay_8_bit(tmp_path):
    src = tmp_path / "scan.tif"
    _sixteen_bit_scan(src)
    from pix2color.photo import output_depth, read_photo

    photo = read_photo(src)
    assert photo.bits == 16
    assert output_depth(photo, tmp_path / "a.tif", "input") == 16
    assert output_depth(photo, tmp_path / "a.tif", 8) == 8
    assert output_depth(photo, tmp_path / "a.jpg", 16) == 16  # the input's format decides: TIFF
    jpeg = photo_from_image(Image.open(src).convert("L"), fmt="JPEG")
    assert output_depth(jpeg, tmp_path / "a.jpg", 16) == 8  # JPEG holds 8 bits only


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")])
def test_dpi_icc_profile_and_exif_are_kept(tmp_path, fmt, ext):
    from PIL import ImageCms

    from pix2color.photo import read_photo, save_like

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "Grandpa's archive"  # Artist
    src = tmp_path / f"in{ext}"
    Image.fromarray(real_photo("coffee")).save(
        src, format=fmt, dpi=(300, 300), icc_profile=icc, exif=exif.tobytes()
    )
    photo = read_photo(src)
    out = save_like(Image.fromarray(photo.rgb), photo, tmp_path / f"out{ext}")
    with Image.open(out) as im:
        assert tuple(round(float(d)) for d in im.info["dpi"]) == (300, 300)
        assert im.info["icc_profile"] == icc
        assert im.getexif().get(0x013B) == "Grandpa's archive"


def test_a_grey_icc_profile_is_not_put_on_colour_output():
    from PIL import ImageCms

    gray_icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    gray_icc[16:20] = b"GRAY"
    img = Image.new("L", (8, 8))
    img.info["icc_profile"] = bytes(gray_icc)
    assert "icc_profile" not in photo_from_image(img).info


def _tiny_model(tmp_path: Path) -> Path:
    from pix2color.models.io import save_pretrained
    from pix2color.models.unet import UNetGenerator

    torch.manual_seed(0)
    return save_pretrained(UNetGenerator(base_channels=8, depth=4, max_channels=16), tmp_path / "m")


def _read_png16(path: Path) -> np.ndarray:
    """A filter-0, 16-bit RGB PNG as written by save_like (enough to check its values)."""
    import struct
    import zlib

    data, pos, idat = path.read_bytes(), 8, b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        if kind == b"IHDR":
            W, H = struct.unpack(">II", data[pos + 8 : pos + 16])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(H, 1 + W * 6)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].copy().view(">u2").reshape(H, W, 3).astype(np.uint16)


@pytest.mark.parametrize("mode", ["bilinear", "guided"])
def test_the_one_pass_join_is_upsampling_then_lab_to_rgb_exactly(mode):
    # BandColour.rgb8 (one compiled pass) against its two steps done apart: the same bytes
    photo = _photo("grey")
    ab, s = _color(photo)
    W, H = photo.size
    color = BandColor(ab, s, (H, W), mode=mode)
    L = photo_L_rows(photo, 40, 47)
    fused = np.empty((7, W, 3), np.uint8)
    color.rgb8(40, 47, L, fused)
    a, b = color.rows(40, 47, L)
    apart = np.empty((7, W, 3), np.uint8)
    lab_rows_to_rgb8(L, a, b, apart)
    assert np.array_equal(fused, apart)
