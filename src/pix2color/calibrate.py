"""Choose a class-head model's annealed-mean temperature on the validation split.

The temperature trades vividness against safety: T = 1 decodes the mean of the predicted colour
distribution (pale), small T its mode (vivid, but patchy where the network hesitates). Trained
models of the "classes" head are calibrated on the *validation* photos (never the test split):
each candidate T is scored with validate(), and among those whose PSNR is not below the grey
input's, the one whose mean colourfulness is closest to that of the true photos (smallest ΔCF)
wins; the whole sweep goes into the model's metadata, so the model card can show it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from pix2color.data.dataset import CenterCrops, load_photos, split_files
from pix2color.metrics import LPIPS

log = logging.getLogger(__name__)

TEMPERATURES = (0.2, 0.25, 0.3, 0.35, 0.38, 0.45, 0.55, 0.7, 1.0)


def sweep_temperature(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    temperatures: tuple[float, ...] = TEMPERATURES,
    lpips_model: LPIPS | None = None,
) -> list[dict[str, float]]:
    """Validation metrics of G at each temperature -> one row per temperature.

    G keeps the temperature it had when done.
    """
    from pix2color.train import validate  # train imports this module's users, not the reverse

    if getattr(G, "head_kind", "regression") != "classes":
        raise ValueError("only a model with a class head (model.head='classes') has a temperature")
    bad = [t for t in temperatures if not t > 0]
    if bad:
        raise ValueError(f"temperatures must be above 0, got {bad}")
    before, rows = G.temperature, []
    try:
        for t in temperatures:
            G.temperature = float(t)
            metrics, _ = validate(G, loader, device, 0, lpips_model)
            rows.append({"temperature": float(t), **metrics})
            log.info(
                "T=%.2f: colourfulness %.1f (truth %.1f), ΔCF %.1f, PSNR %.2f%s",
                t, metrics["cf"], metrics["cf_truth"], metrics["dcf"], metrics["psnr"],
                f", LPIPS {metrics['lpips']:.4f}" if "lpips" in metrics else "",
            )  # fmt: skip
    finally:
        G.temperature = before
    return rows


def choose_temperature(rows: list[dict[str, float]]) -> dict[str, float]:
    """The row with the smallest ΔCF among those whose PSNR is not below the grey input's.

    Vivid but wrong colour scores below the grey photo itself; such temperatures are only
    chosen when no temperature beats grey (then the highest PSNR wins). Ties go to the
    higher, safer temperature.
    """
    if not rows:
        raise ValueError("no temperatures were scored")
    fair = [r for r in rows if r["psnr"] >= r.get("psnr_grey", -math.inf)]
    if not fair:
        return max(rows, key=lambda r: (r["psnr"], r["temperature"]))
    return min(fair, key=lambda r: (round(r["dcf"], 6), -r["temperature"]))


def val_loader(root: str | Path, size: int = 256, batch_size: int = 16) -> DataLoader:
    """The validation split of a prepared photo folder, as centre squares of `size` px."""
    files = split_files(root, "val")
    return DataLoader(CenterCrops(load_photos(files, size), size=size), batch_size=batch_size)


def calibrate(
    G: nn.Module,
    loader: DataLoader,
    device: torch.device,
    temperatures: tuple[float, ...] = TEMPERATURES,
    lpips_model: LPIPS | None = None,
) -> tuple[float, dict[str, Any]]:
    """Sweep, choose, and set G's temperature -> (chosen T, metadata for the model's config)."""
    rows = sweep_temperature(G, loader, device, temperatures, lpips_model)
    best = choose_temperature(rows)
    G.temperature = best["temperature"]
    G.config["temperature"] = best["temperature"]
    meta = {
        "rule": "smallest validation ΔCF (|mean colourfulness - truth's|) with PSNR >= grey's",
        "chosen": best["temperature"],
        "sweep": [{k: round(v, 5) for k, v in r.items()} for r in rows],
    }
    return best["temperature"], meta


def _stored_half(path: Path) -> bool:
    """Whether a model folder's weights are stored in fp16 (kept so when rewritten)."""
    from safetensors import safe_open

    from pix2color.models.io import WEIGHTS_FILE

    weights = path / WEIGHTS_FILE if path.is_dir() else path
    if weights.suffix != ".safetensors":
        return False
    with safe_open(str(weights), framework="pt") as f:
        return any(f.get_slice(k).get_dtype() == "F16" for k in f.keys())


def cmd_calibrate(args) -> int:
    from pix2color.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _error
    from pix2color.models.io import ModelNotFoundError, load_generator, resolve, save_pretrained

    try:
        temps = tuple(float(t) for t in args.temperatures.split(","))
        source = resolve(args.model)
        G, info = load_generator(source)
    except ValueError as e:
        _error(f"--temperatures {args.temperatures!r}: {e}; give numbers like 0.3,0.38,0.5")
        return EXIT_USAGE
    except ModelNotFoundError as e:
        _error(str(e))
        return EXIT_USAGE
    if getattr(G, "head_kind", "regression") != "classes":
        _error(f"{args.model}: this model predicts ab directly and has no temperature to choose")
        return EXIT_USAGE
    out = Path(args.output) if args.output else source
    if not out.is_dir() and out.exists() or out.suffix in (".pt", ".safetensors"):
        _error(f"{out}: give --output a folder for the calibrated model")
        return EXIT_USAGE
    try:
        loader = val_loader(args.data, size=args.size)
        lpips_model = LPIPS.from_pretrained("alex") if args.lpips else None
        chosen, meta = calibrate(G, loader, torch.device("cpu"), temps, lpips_model)
    except (FileNotFoundError, ValueError) as e:
        _error(str(e))
        return EXIT_FAILED
    cols = ["temperature", "cf", "cf_truth", "dcf", "psnr", "psnr_grey", "ssim"]
    cols += ["lpips"] if args.lpips else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in meta["sweep"]:
        print("| " + " | ".join(f"{r[c]:.4g}" for c in cols) + " |")
    metadata = {**info.get("metadata", {}), "temperature_calibration": meta}
    save_pretrained(G, out, metadata=metadata, half=_stored_half(source))
    print(f"chose temperature {chosen} (smallest validation ΔCF, PSNR >= grey's); wrote {out}")
    return EXIT_OK


def register(sub) -> None:
    """Add `pix2color calibrate` to the CLI."""
    c = sub.add_parser(
        "calibrate",
        help="choose a class-head model's colour temperature on the validation photos",
    )
    c.add_argument("model", help="model folder, shipped model name or training checkpoint")
    c.add_argument("--data", default="data/photos", help="prepared photo folder (uses its val/)")
    c.add_argument("-o", "--output", help="folder for the calibrated model (default: in place)")
    c.add_argument(
        "--temperatures",
        default=",".join(str(t) for t in TEMPERATURES),
        help="comma-separated candidates",
    )
    c.add_argument("--size", type=int, default=256, help="validation crop side (default 256)")
    c.add_argument("--lpips", action="store_true", help="also report LPIPS (needs its weights)")
    c.set_defaults(func=cmd_calibrate)
