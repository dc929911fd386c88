"""`pix2color train`: train (or resume) a model from a TOML recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK, Interrupted


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help=COMMANDS["train"])
    t.add_argument("config", help="a TOML recipe, e.g. configs/pix2pix-scratch.toml")
    t.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.epochs=5")
    t.add_argument("--run-dir", help="run folder (default: runs/<recipe name>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pix2color.train import fit
    from pix2color.train.recipe import load_config

    cfg = load_config(args.config, args.overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.name
    try:
        summary = fit(cfg, run_dir, resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; continue with: pix2color train {args.config} "
            f"--run-dir {run_dir} --resume"
        ) from None
    print(
        f"trained {summary['epochs_run']} epoch(s)"
        + (" (stopped early)" if summary["stopped_early"] else "")
        + f"; best {summary['metric']} {summary['best_metric']:.4f}"
        + f" at epoch {summary['best_epoch']}"
        + f"; run folder {run_dir} (best model in {run_dir / 'model'})"
    )
    return EXIT_OK
