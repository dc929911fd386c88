"""`pix2color demo`: colour scikit-image's sample photos, made grey, and a before/after sheet."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help=COMMANDS["demo"])
    d.add_argument("-o", "--output", default="out/demo")
    d.add_argument("--model", default="default")
    d.add_argument("--size", type=int, default=256)
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from pix2color.inference.colorizer import Colorizer
    from pix2color.photo import read_photo, save_like

    out = Path(args.output)
    colorizer = Colorizer.from_pretrained(args.model, size=args.size)
    (out / "input").mkdir(parents=True, exist_ok=True)
    rows = []
    for name in SAMPLES:
        rgb = getattr(skdata, name)()
        rgb = rgb[0] if isinstance(rgb, tuple) else rgb  # the stereo pair: its left photo
        gray_path = out / "input" / f"{name.removeprefix('stereo_')}.jpg"
        Image.fromarray(rgb).convert("L").save(gray_path, quality=95)
        photo = read_photo(gray_path)
        t = time.time()
        img = colorizer.colorize_photo(photo)
        ms = (time.time() - t) * 1000
        written = save_like(img, photo, out / "colored" / gray_path.name)
        print(f"{gray_path} -> {written} ({img.width}x{img.height}, {ms:.0f} ms)")
        h = 256
        cells = [Image.open(gray_path).convert("RGB"), img.convert("RGB"), Image.fromarray(rgb)]
        cells = [c.resize((round(c.width * h / c.height), h)) for c in cells]
        rows.append(np.concatenate([np.asarray(c) for c in cells], axis=1))
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows])
    Image.fromarray(sheet).save(out / "before_after.jpg", quality=92)
    print(f"before/after sheet (grey | pix2color | original): {out / 'before_after.jpg'}")
    return EXIT_OK
