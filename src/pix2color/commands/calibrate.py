"""`pix2color calibrate`: choose how bold a model's colour is, on the validation photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    from pix2color.models.color_settings import BOOSTS, GAINS, TEMPERATURES

    c = sub.add_parser(
        "calibrate",
        help=COMMANDS["calibrate"],
    )
    c.add_argument("model", help="model folder, installed model name or training checkpoint")
    c.add_argument(
        "--data", default="data/photos", help="prepared photo folder (val/ scores, train/ prior)"
    )
    c.add_argument("-o", "--output", help="folder for the calibrated model (default: in place)")
    c.add_argument(
        "--temperatures",
        default=",".join(str(v) for v in TEMPERATURES),
        help="comma-separated annealed-mean temperatures",
    )
    c.add_argument(
        "--boosts",
        default=",".join(str(v) for v in BOOSTS),
        help="comma-separated prior boosts (0 = the network's own probabilities)",
    )
    c.add_argument(
        "--gains",
        default=",".join(str(v) for v in GAINS),
        help="comma-separated ab gains, for a regression (L1) model (1 = unchanged)",
    )
    c.add_argument("--size", type=int, default=256, help="validation crop side (default 256)")
    c.add_argument(
        "--short-side",
        type=int,
        default=320,
        help="photos are loaded at this short side first, as in training (data.load_short_side)",
    )
    c.add_argument("--half", action="store_true", help="store the weights in fp16 (half the size)")
    c.add_argument(
        "--no-lpips",
        dest="lpips",
        action="store_false",
        help="skip LPIPS (faster; then only the PSNR target constrains the choice)",
    )
    c.set_defaults(func=run)


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give numbers like 0.3,0.38,0.5") from None


def run(args: argparse.Namespace) -> int:
    import torch

    from pix2color.data.dataset import load_photos, split_files
    from pix2color.eval.lpips import LPIPS
    from pix2color.models.color_settings import color_knob
    from pix2color.models.io import load_generator, resolve, save_pretrained, stored_half
    from pix2color.train.calibrate import calibrate, calibrated_metadata, val_loader

    temps = _floats(args.temperatures, "--temperatures")
    boosts = _floats(args.boosts, "--boosts")
    gains = _floats(args.gains, "--gains")
    source = resolve(args.model)
    G, info = load_generator(source)
    knob = color_knob(G)
    if knob is None:
        raise UsageError(
            f"{args.model}: this model has neither colour classes (a temperature) nor an ab gain "
            "to choose; calibrate a mobilenet_unet model"
        )
    done = info.get("metadata", {}).get("calibration", {}).get("boost_in_bias", 0)
    if knob == "temperature" and done and any(boosts):
        raise UsageError(
            f"{args.model}: its head already holds a prior boost of {done}; calibrate the "
            "training run's model (or pass --boosts 0 to choose only the temperature)"
        )
    out = Path(args.output) if args.output else source
    if not out.is_dir() and out.exists() or out.suffix in (".pt", ".safetensors"):
        raise UsageError(f"{out}: give --output a folder for the calibrated model")
    lpips_model = LPIPS.from_pretrained("alex") if args.lpips else None  # weights: fail early
    loader = val_loader(args.data, size=args.size, short_side=args.short_side)
    photos = None
    if knob == "temperature" and any(boosts):  # the training photos' colour prior, as in training
        photos = load_photos(split_files(args.data, "train"), args.short_side)
    best, meta = calibrate(
        G, loader, torch.device("cpu"), train_photos=photos, temperatures=temps, boosts=boosts,
        gains=gains, lpips_model=lpips_model,
    )  # fmt: skip
    cols = ["boost", "temperature"] if knob == "temperature" else ["gain"]
    cols += ["cf", "cf_truth", "dcf", "psnr", "psnr_grey", "psnr_gain_se"]
    cols += ["ssim"] + (["lpips", "lpips_grey"] if args.lpips else [])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in meta["sweep"]:
        print("| " + " | ".join(f"{r[c]:.4g}" for c in cols) + " |")
    metadata = calibrated_metadata(info.get("metadata", {}), best, meta)
    save_pretrained(G, out, metadata=metadata, half=args.half or stored_half(source))
    chosen = (
        f"ab gain {best['gain']}"
        if knob == "gain"
        else f"prior boost {best['boost']} and temperature {best['temperature']}"
    )
    print(
        f"chose {chosen} (smallest validation ΔCF that keeps the PSNR and reachable LPIPS "
        f"targets); wrote {out}"
    )
    return EXIT_OK
