"""`pix2color data`: fetch colour photos, prepare train/val/test folders, study a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pix2color.commands import COMMANDS, print_error
from pix2color.data.fetch import DEFAULT_SOURCES, SOURCES
from pix2color.errors import EXIT_CODES_HELP, EXIT_FAILED, EXIT_OK, UsageError, WorkFailed


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help=COMMANDS["data"],
        description="Fetch real colour photos, prepare train/val/test folders, study them.",
    )
    data.set_defaults(func=lambda args: _usage(data))
    steps = data.add_subparsers(dest="data_command", metavar="{fetch,prepare,eda}")
    _register_fetch(steps)
    _register_prepare(steps)
    _register_eda(steps)
    for step in steps.choices.values():  # cli gives the exit statuses to top-level commands only
        step.epilog = EXIT_CODES_HELP


def _register_fetch(sub: argparse._SubParsersAction) -> None:
    listing = "\n".join(
        f"  {name}{'' if s.default else ' (not by default)'}: {s.note}"
        for name, s in SOURCES.items()
    )
    fetch = sub.add_parser(
        "fetch",
        help="download photos from Debian packages (needs apt-get and dpkg-deb)",
        description="Download the photo packages with apt-get (no install) into DIR/.debs and "
        "unpack only their photos and licences into DIR/<source>/.\n\nsources:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument("dir", metavar="DIR", type=Path, help="folder to fill, e.g. data/raw")
    fetch.add_argument(
        "--sources",
        nargs="+",
        metavar="NAME",
        default=list(DEFAULT_SOURCES),
        help=f"packages to fetch (default: {' '.join(DEFAULT_SOURCES)})",
    )
    fetch.add_argument("--force", action="store_true", help="fetch again even if complete")
    fetch.set_defaults(func=run_fetch)


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    prepare = sub.add_parser(
        "prepare",
        help="clean, deduplicate and split photos into train/val/test",
        description="Decode every photo under SRC, drop unreadable, small, near-grey and "
        "near-duplicate ones, and write train/val/test folders, manifest.csv and "
        "prepare_report.json to OUT. A SRC with color/ and gray/ folders uses color/ only.",
    )
    prepare.add_argument(
        "src", metavar="SRC", type=Path, help="folder of colour photos, e.g. data/raw"
    )
    prepare.add_argument("out", metavar="OUT", type=Path, help="output folder, e.g. data/photos")
    prepare.add_argument("--min-side", type=int, default=128, help="drop photos with a shorter "
                         "short side (default: 128)")  # fmt: skip
    prepare.add_argument(
        "--max-side",
        type=_max_side,
        default=1024,
        help="downscale so the long side is at most this; 0 keeps full size (default: 1024)",
    )
    prepare.add_argument(
        "--min-colorfulness",
        type=float,
        default=8.0,
        help="drop near-grey photos below this Hasler-Süsstrunk colourfulness (default: 8)",
    )
    prepare.add_argument("--val", type=float, default=0.1, help="validation fraction (0.1)")
    prepare.add_argument("--test", type=float, default=0.1, help="test fraction (0.1)")
    prepare.add_argument(
        "--split-by",
        choices=("scene", "source"),
        default=None,
        help="scene (default): every split draws from every source, one scene in one split; "
        "source: whole sources (first folders under SRC) go to val and to test, never seen in "
        "training, and held-out scenes of the training sources go to test_in",
    )
    prepare.add_argument(
        "--seed",
        type=int,
        default=None,
        help="--split-by source: the order that picks held-out sources (0)",
    )
    prepare.add_argument(
        "--folds",
        type=int,
        default=None,
        help="--split-by source: how many "
        "disjoint groups of held-out sources to rotate over (default: as many "
        "as give a test split of about --test, at least 2)",
    )
    prepare.add_argument(
        "--fold",
        type=int,
        default=None,
        help="--split-by source: which group is the test split (0)",
    )
    prepare.add_argument(
        "--keep-split",
        metavar="REPORT",
        type=Path,
        default=None,
        help="the prepare_report.json (or its folder, or a file with only its plan, like "
        "experiments/study_split.json) of an earlier --split-by source run: "
        "hold out exactly its val and test sources and train on every other source, new ones "
        "included, so that adding sources leaves val and test as they were (implies "
        "--split-by source; its seed, fold and folds are kept)",
    )
    prepare.set_defaults(func=run_prepare)


def _register_eda(sub: argparse._SubParsersAction) -> None:
    eda = sub.add_parser(
        "eda",
        help="plots and summary.json about a photo folder",
        description="Study a prepared folder (its manifest.csv) or any folder of photos: size, "
        "RGB, ab and colourfulness distributions, counts by source and split.",
    )
    eda.add_argument("dir", metavar="DIR", type=Path, help="folder to study, e.g. data/photos")
    eda.add_argument("--output", metavar="OUTDIR", type=Path, default=None, help="default: DIR/eda")
    eda.set_defaults(func=run_eda)


def _usage(parser: argparse.ArgumentParser) -> int:
    """`data` without a subcommand: show its help and refuse."""
    parser.print_help(sys.stderr)
    raise UsageError("choose what to do: data fetch, data prepare or data eda")


def _max_side(text: str) -> int | None:
    """argparse type: a positive int, or 0 / "none" for no limit."""
    if text.lower() in ("0", "none"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive, or 0 for full size; got {value}")
    return value


def run_fetch(args: argparse.Namespace) -> int:
    """`data fetch DIR [--sources ...]`: fetch each source; EXIT_FAILED if any failed."""
    from pix2color.data.fetch import fetch

    try:
        reports = fetch(args.dir, args.sources, force=args.force)
    except OSError as err:  # e.g. DIR cannot be made
        raise WorkFailed(str(err)) from err
    for r in reports:
        if r.ok:
            extra = f", {len(r.skipped)} other files left out" if r.skipped else ""
            word = "already there" if r.status == "complete" else "fetched"
            print(f"{r.source} {r.version}: {r.files} photos {word} in {r.folder}{extra}")
        else:
            print_error(r.error)  # it starts with the source's name
    failed = [r.source for r in reports if not r.ok]
    if failed:
        print_error(f"{len(failed)} source(s) failed: {', '.join(failed)}")
        return EXIT_FAILED
    return EXIT_OK


def run_prepare(args: argparse.Namespace) -> int:
    """`data prepare SRC OUT`: write the splits and print what was kept and dropped."""
    from pix2color.data.prepare import prepare

    source_options = {"--seed": args.seed, "--fold": args.fold, "--folds": args.folds}
    given = [name for name, value in source_options.items() if value is not None]
    if args.keep_split is not None:
        if given or args.split_by == "scene":
            misplaced = ", ".join(given or ["--split-by scene"])
            raise UsageError(
                f"--keep-split takes the held-out sources from {args.keep_split}; leave out "
                f"{misplaced}"
            )
        args.split_by = "source"
    args.split_by = args.split_by or "scene"
    if given and args.split_by != "source":
        raise UsageError(
            f"{', '.join(given)} choose the held-out sources: add --split-by source (the scene "
            "split has no choice to make: a photo's split follows from its scene alone)"
        )
    try:
        report = prepare(
            args.src,
            args.out,
            min_side=args.min_side,
            min_colorfulness=args.min_colorfulness,
            val_fraction=args.val,
            test_fraction=args.test,
            max_side=args.max_side,
            split_by=args.split_by,
            seed=args.seed or 0,
            fold=args.fold or 0,
            folds=args.folds,
            progress=_Progress(),
            keep_split=args.keep_split,
        )
    except OSError as err:  # e.g. OUT cannot be written
        raise WorkFailed(str(err)) from err
    if report.layout == "paired":
        print(f"{args.src}: paired color/ + gray/ layout, used the colour photos only")
    kept = sum(report.kept.values())
    print(f"found {report.found} photos, kept {kept}: " + _counts(report.kept))
    for source, counts in sorted(report.kept_by_source.items()):
        print(f"  {source or '(top level)'}: {_counts(counts)}")
    dropped = {reason: len(files) for reason, files in report.dropped.items()}
    print(f"dropped {sum(dropped.values())}: " + _counts(dropped))
    if report.sources:
        _print_sources(report.sources)
    folders = ",".join(report.kept)
    print(f"wrote {args.out}/{{{folders}}}, manifest.csv, prepare_report.json (drop reasons)")
    return EXIT_OK


def _print_sources(plan: dict) -> None:
    """The held-out sources of --split-by source, split by split, with their photo counts."""
    print(f"split by source: fold {plan['fold']} of {plan['folds']} (seed {plan['seed']})")
    if plan.get("kept_from"):
        added = ", ".join(plan["added_to_training"]) or "none"
        print(f"  val and test kept from {plan['kept_from']}; sources added to training: {added}")
    for split, what in (("val", "validation"), ("test", "test"), ("train", "training")):
        sources = plan[split]
        listed = ", ".join(f"{s or '(top level)'} {n}" for s, n in sources.items())
        print(f"  {what} sources ({sum(sources.values())} photos): {listed}")
    if plan["too_big_to_hold_out"]:
        print("  too big to hold out (always in training): "
              + ", ".join(plan["too_big_to_hold_out"]))  # fmt: skip
    for linked in plan["linked_by_a_scene"]:
        print(f"  sharing a scene, kept together: {', '.join(linked)}")


def run_eda(args: argparse.Namespace) -> int:
    """`data eda DIR [--output OUTDIR]`: write the plots and summary.json."""
    from pix2color.data.eda import eda

    out = args.output if args.output is not None else args.dir / "eda"
    try:
        summary = eda(args.dir, out)
    except OSError as err:  # e.g. OUTDIR cannot be written
        raise WorkFailed(str(err)) from err
    print(f"studied {summary['photos']} photos: " + _counts(summary["by_source"]))
    if summary["by_split"].get("", 0) != summary["photos"]:
        print("  by split: " + _counts(summary["by_split"]))
    c = summary["colorfulness"]
    print(f"  colourfulness median {c['median']:.1f} (10%-90%: {c['p10']:.1f}-{c['p90']:.1f})")
    if summary["unreadable"]:
        print(f"  {len(summary['unreadable'])} unreadable, listed in summary.json")
    print(f"wrote {len(summary['plots'])} plots and summary.json to {out}")
    return EXIT_OK


def _counts(counts: dict[str, int]) -> str:
    """{"train": 3, "val": 1} -> "train 3, val 1"."""
    return ", ".join(f"{name or '(none)'} {n}" for name, n in counts.items())


class _Progress:
    """A tqdm bar per prepare stage, on stderr."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=stage, unit="photo", leave=False)
            self.stage = stage
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.bar.close()
