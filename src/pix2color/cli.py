"""The `pix2color` command: thin argument parsing over the modules that do the work."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Pillow's writable formats by the name `Image.format` reports; others are written as PNG
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "PNG": {}, "TIFF": {}}


def report_error(message: str, code: int = EXIT_FAILED) -> int:
    """Print one `error: ...` line to stderr (never a traceback) and return the exit status.

    Every subcommand reports bad input through this, so the CLI speaks with one voice.
    """
    print(f"error: {message}", file=sys.stderr)
    return code


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )


# ---------------------------------------------------------------- colorize
def _output_paths(inputs: list[str], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Map each input image to its output path (folders keep their inner layout)."""
    from pix2color.data.images import find_images

    pairs: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        files, missing = find_images([p])
        errors.extend(missing)
        for f in files:
            rel = f.relative_to(p) if p.is_dir() else Path(f.name)
            pairs.append((f, out_dir / rel))
    return pairs, errors


def save_like(img, photo, out: Path) -> Path:
    """Save a coloured image in its input's format (PNG stays PNG); returns the path written."""
    fmt = (photo.format or "").upper()
    if fmt == "MPO":
        fmt = "JPEG"
    if fmt == "GIF":
        img = img.convert("RGBA" if img.mode == "RGBA" else "RGB")
    if fmt in ("JPEG", "BMP", "PPM") and img.mode == "RGBA":
        img = img.convert("RGB")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        img.save(out, format=fmt or None, **_SAVE_OPTIONS.get(fmt, {}))
        return out
    except (KeyError, OSError, ValueError):
        fallback = out.with_suffix(".png")  # a format Pillow reads but cannot write
        img.save(fallback, format="PNG")
        return fallback


def cmd_colorize(args: argparse.Namespace) -> int:
    from pix2color.inference import Colorizer
    from pix2color.models.io import ModelNotFoundError

    try:
        colorizer = Colorizer.from_pretrained(
            args.model, size=args.size, device=args.device, temperature=args.temperature,
            gain=args.gain,
        )  # fmt: skip
    except (ModelNotFoundError, ValueError) as e:
        report_error(str(e))
        return EXIT_USAGE
    out_dir = Path(args.output)
    pairs, errors = _output_paths(args.inputs, out_dir)
    for e in errors:
        report_error(e)
    targets: dict[Path, Path] = {}
    todo: list[Path] = []
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            errors.append(f"{src}: the output would overwrite the input; choose another --output")
            report_error(errors[-1])
        elif dst in targets.values():
            errors.append(f"{src}: same output name as another input ({dst}); colour them apart")
            report_error(errors[-1])
        else:
            targets[src] = dst
            todo.append(src)
    from tqdm import tqdm

    done, start = 0, time.time()
    bar = tqdm(total=len(todo), unit="photo", disable=args.quiet or len(todo) < 2, file=sys.stderr)
    for path, img, photo, err in colorizer.colorize_files(todo, batch_size=args.batch_size):
        bar.update(1)
        if err is not None:
            errors.append(err)
            bar.write(f"error: {err}", file=sys.stderr)
            continue
        try:
            written = save_like(img, photo, targets[path])
        except OSError as e:
            errors.append(f"{path}: cannot write {targets[path]} ({e})")
            bar.write(f"error: {errors[-1]}", file=sys.stderr)
            continue
        done += 1
        if not args.quiet and len(todo) < 2:
            print(f"{path} -> {written}")
    bar.close()
    secs = time.time() - start
    failed = len(errors)
    print(
        f"coloured {done} photo(s) into {out_dir} in {secs:.1f} s"
        + (f"; {failed} failed (see the errors above)" if failed else "")
        + f" [model {args.model}, working size {args.size}]"
    )
    return EXIT_FAILED if failed or done == 0 else EXIT_OK


# ---------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from pix2color.config import ConfigError, load_config
    from pix2color.train import fit

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        report_error(str(e))
        return EXIT_USAGE
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.name
    try:
        summary = fit(cfg, run_dir, resume=args.resume, progress=not args.quiet)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as e:
        report_error(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        report_error(
            f"interrupted; continue with: pix2color train {args.config} "
            f"--run-dir {run_dir} --resume"
        )
        return 130
    print(
        f"trained {summary['epochs_run']} epoch(s)"
        + (" (stopped early)" if summary["stopped_early"] else "")
        + f"; best {summary['metric']} {summary['best_metric']:.4f}"
        + f" at epoch {summary['best_epoch']}"
        + f"; run folder {run_dir} (best model in {run_dir / 'model'})"
    )
    return EXIT_OK


# ---------------------------------------------------------------- demo
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")


def cmd_demo(args: argparse.Namespace) -> int:
    """Colour scikit-image's sample photos (made grey) and write a before/after sheet."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from pix2color.data.images import read_photo
    from pix2color.inference import Colorizer
    from pix2color.models.io import ModelNotFoundError

    out = Path(args.output)
    (out / "input").mkdir(parents=True, exist_ok=True)
    try:
        colorizer = Colorizer.from_pretrained(args.model, size=args.size)
    except (ModelNotFoundError, ValueError) as e:
        report_error(str(e))
        return EXIT_USAGE
    rows = []
    for name in SAMPLES:
        rgb = getattr(skdata, name)()
        rgb = rgb[0] if isinstance(rgb, tuple) else rgb  # the stereo pair: its left photo
        grey_path = out / "input" / f"{name.removeprefix('stereo_')}.jpg"
        Image.fromarray(rgb).convert("L").save(grey_path, quality=95)
        photo = read_photo(grey_path)
        t = time.time()
        img = colorizer.colorize_photo(photo)
        ms = (time.time() - t) * 1000
        written = save_like(img, photo, out / "colored" / grey_path.name)
        print(f"{grey_path} -> {written} ({img.width}x{img.height}, {ms:.0f} ms)")
        h = 256
        cells = [Image.open(grey_path).convert("RGB"), img.convert("RGB"), Image.fromarray(rgb)]
        cells = [c.resize((round(c.width * h / c.height), h)) for c in cells]
        rows.append(np.concatenate([np.asarray(c) for c in cells], axis=1))
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows])
    Image.fromarray(sheet).save(out / "before_after.jpg", quality=92)
    print(f"before/after sheet (grey | pix2color | original): {out / 'before_after.jpg'}")
    return EXIT_OK


# ---------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from pix2color.models.io import available_models, models_dir

    names = available_models()
    print(f"shipped models in {models_dir()}: " + (", ".join(names) if names else "none"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from pix2color.calibrate import register as register_calibrate
    from pix2color.data.commands import register as register_data
    from pix2color.evaluate import register as register_evaluate
    from pix2color.export import register as register_export
    from pix2color.web.commands import register as register_web

    p = argparse.ArgumentParser(
        prog="pix2color", description="Give black-and-white photographs back their colour."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("colorize", help="colour photos at their full resolution")
    c.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    c.add_argument("-o", "--output", required=True, help="folder for the results")
    c.add_argument(
        "--model", default="default", help="shipped model name or path (default: default)"
    )
    c.add_argument(
        "--size",
        type=int,
        default=256,
        help="working size: the long side the model sees (smaller often gives bolder colour)",
    )
    c.add_argument(
        "--temperature",
        type=float,
        help="colour temperature of class models like colour-classes (lower = bolder, higher = "
        "safer; default: the model's calibrated value)",
    )
    c.add_argument(
        "--gain",
        type=float,
        help="colour gain of models like default that predict colour directly (higher = bolder, "
        "lower = safer, 1 = the network's own; default: the model's calibrated value)",
    )
    c.add_argument("--batch-size", type=int, default=4)
    c.add_argument("--device", default="cpu", help="cpu or cuda")
    c.add_argument("-q", "--quiet", action="store_true")
    c.set_defaults(func=cmd_colorize)

    t = sub.add_parser("train", help="train a model from a recipe in configs/")
    t.add_argument("config", help="a TOML recipe, e.g. configs/pix2pix-scratch.toml")
    t.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.epochs=5")
    t.add_argument("--run-dir", help="run folder (default: runs/<recipe name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("demo", help="colour the sample photos and write a before/after sheet")
    d.add_argument("-o", "--output", default="out/demo")
    d.add_argument("--model", default="default")
    d.add_argument("--size", type=int, default=256)
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("models", help="list the shipped models")
    m.set_defaults(func=cmd_models)

    register_data(sub)
    register_evaluate(sub)
    register_export(sub)
    register_calibrate(sub)
    register_web(sub)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; `section.key=value` overrides may also come after options."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling `overrides` at the first option, so in
    # `train recipe.toml train.epochs=5 --resume` the overrides after an option come back
    # as "unknown": they are taken as overrides when they have the override shape.
    if (
        extra
        and getattr(args, "overrides", None) is not None
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pix2color` console script."""
    args = parse_args(argv)
    _setup_logging(args.verbose)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
