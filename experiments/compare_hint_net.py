"""Guided colour on validation crops, one protocol: automatic, classical propagation, HintUNet.

    PYTHONPATH=src python experiments/compare_hint_net.py --data data/photos --auto default \
        --hint runs/hint-net/model [--points 10] [--limit 0] [--pulls 1e-4 1e-5]

Training's own validation crops (256 px centre squares of the val split, GuidedCenterCrops: the
same fixed points per photo, radius 2, the truth's mean colour). Rows: the automatic model's
colour; the classical propagation of the points over it (propagate.py, at each --pulls: the
page's 1e-4 by default, lower reaching further); each --hint model
without and with the points. PSNR (dB) and LPIPS (AlexNet) on the 256 px crops, colour
computed at 256 px (no full-size join): figures comparable with each other, not with
`evaluate`'s. Val only: never point it at the test split.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pix2color.color.lab import denormalize_ab, denormalize_L, lab_tensor_to_rgb, normalize_ab
from pix2color.data.dataset import GuidedCenterCrops, load_photos, simulate_points, split_files
from pix2color.eval.lpips import LPIPS
from pix2color.eval.metrics import psnr
from pix2color.guide.propagate import PULL, patches, solve_difference
from pix2color.models.io import load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/photos")
    ap.add_argument("--auto", default="default")
    ap.add_argument("--hint", nargs="+", default=[])
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--pulls", type=float, nargs="+", default=[PULL])
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = split_files(args.data, "val")
    files = files[: args.limit] if args.limit else files
    val = GuidedCenterCrops(load_photos(files, 320), size=256, n_points=args.points)
    lpips = LPIPS.from_pretrained("alex", torch.device("cpu"))
    auto, _ = load_generator(args.auto)
    models = {h: load_generator(h)[0].eval() for h in args.hint}
    rows: dict[str, list[tuple[float, float]]] = {}

    def score(name: str, L, ab_pred, ab_true) -> None:
        pred = lab_tensor_to_rgb(L[None], ab_pred[None])
        true = lab_tensor_to_rgb(L[None], ab_true[None])
        rows.setdefault(name, []).append((psnr(pred, true).item(), lpips(pred, true).item()))

    with torch.no_grad():
        for i in range(len(val)):
            L, ab, maps, ref = val[i]
            a = auto.eval()(L[None])[0]
            score("automatic", L, a, ab)
            rng = np.random.default_rng([i, 13])  # the points of GuidedCenterCrops
            n = args.points
            centres, colors = simulate_points(denormalize_ab(ab), rng, n, np.full(n, 2))
            for pull in args.pulls:
                spread = _propagate_ab(denormalize_L(L), denormalize_ab(a), centres, colors, pull)
                name = "classical" if pull == PULL else f"classical (pull {pull:g})"
                score(name, L, normalize_ab(spread), ab)
            for name, G in models.items():
                score(f"{name} (no points)", L, G(L[None])[0], ab)
                score(f"{name} ({n} points)", L, G(L[None], maps[None], ref[None])[0], ab)
    print(f"| colour ({len(val)} val photos, 256 px) | PSNR (dB) | LPIPS |\n|---|---|---|")
    for name, v in rows.items():
        t = torch.tensor(v)
        print(f"| {name} | {t[:, 0].mean():.2f} | {t[:, 1].mean():.4f} |")


def _propagate_ab(L, auto_ab, centres, colors_ab, pull=PULL):
    """The classical propagation with the points' colours given as ab (Lab units)."""
    auto = auto_ab.float().numpy()
    mask, target = patches(centres, colors_ab, auto.shape[-2:])
    target = (target - auto) * (mask > 0)
    diff = solve_difference(L.numpy().reshape(auto.shape[-2:]), mask, target, pull=pull)
    return torch.from_numpy(auto + diff)


if __name__ == "__main__":
    main()
