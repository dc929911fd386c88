"""`pix2color evaluate`: score models on held-out photos, or compare folders of results.

Two forms:

    evaluate --data DIR --models NAME_OR_PATH... --output OUT [--size 256]
    evaluate --pred DIR --truth DIR --output OUT

With --data, each model colours the grey test photos of a prepared folder (see
`pix2color.evaluate`); before any scoring the command refuses a test photo that is also in the
training split (`pix2color.data.leakage`) unless --allow-leakage. A folder prepared with
`data prepare --split-by source` has two test splits: `test` (sources never seen in training)
and `test_in` (held-out scenes of the training sources); both are scored and reported side by
side, the out-of-source one first: it is what users get. With --pred/--truth, two
folders of images are matched by file name without extension (the path inside the folder), so
other tools can be compared the same way. The report folder is `pix2color.evaluate_report`'s.

--hints adds the colour-points curve; --reference scores each model with a reference photo's
palette, the photo's own palette from a different crop (its left half) and another photo's,
every row on the right halves only (`pix2color.evaluate`'s docstring). The two are run apart:
one scores whole photos, the other right halves, so their rows could not share a table.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from pix2color.commands import COMMANDS
from pix2color.data.leakage import Leak, find_leaks, leak_message
from pix2color.errors import EXIT_OK, Pix2ColorError, UsageError, WorkFailed
from pix2color.eval.evaluate import (
    GRAY,
    HINT_COUNTS,
    HINT_RADIUS,
    OTHER,
    OWN,
    WithPoints,
    WithReference,
    colorless_references,
    evaluate,
)
from pix2color.eval.fid import inception_weights_path
from pix2color.eval.lpips import LPIPS_NETS, lpips_state_dict
from pix2color.eval.report import (
    gray_lines,
    hints_curve,
    markdown_table,
    reference_table,
    write_json,
    write_report_folder,
)
from pix2color.eval.testset import TestSet, has_split, load_pairs, load_test_split

log = logging.getLogger(__name__)

IN_SOURCE = "test_in"  # the in-source test split of a folder prepared with --split-by source

# what each form gives `evaluate`: the truth, {model: images or Colorizer}, protocol, notes, and
# the in-source test split when the folder has one
Inputs = tuple[TestSet, dict[str, Any], dict[str, Any], list[str], TestSet | None]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description="Colour the test photos of a prepared folder with each model, or compare "
        "a folder of results with a folder of truths, and write report.md, report.json, bar "
        "charts and comparison sheets. Metrics: PSNR, SSIM, LPIPS, FID, KID, colourfulness, "
        "deltaCF, CIEDE2000; a grey (input) baseline is always included.",
    )
    p.add_argument("--data", type=Path, help="a prepared folder (its test split is scored, and "
                   "test_in beside it for a folder prepared with --split-by source)")  # fmt: skip
    p.add_argument("--models", nargs="+", metavar="NAME_OR_PATH", help="models to compare")
    p.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="with --data: the split to score; val is for choosing between models and recipes "
        "(it is what training and calibration select on), test only for the final figures",
    )
    p.add_argument("--size", type=int, default=256, help="centre square side (default: 256)")
    p.add_argument(
        "--hints",
        nargs="?",
        const=",".join(map(str, HINT_COUNTS)),
        metavar="N,N,...",
        help="with --data: also score each model given N colour points per photo, simulated "
        "from the truth (random positions seeded by the photo's name, 5x5 discs, the truth's "
        "mean colour there; pix2color.evaluate), for each N of the list (alone: "
        f"{','.join(map(str, HINT_COUNTS))}); the report adds the curve",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="with --data: score each model given a reference photo's palette instead: the "
        "photo's own palette from a different crop (its left half) and another photo's left "
        "half, beside the automatic colour, every row on the right halves only (the part the "
        "reference does not show; pix2color.evaluate); not with --hints",
    )
    p.add_argument("--pred", type=Path, help="folder of coloured results to score")
    p.add_argument("--truth", type=Path, help="folder of the true colour photos for --pred")
    p.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the metrics as JSON")
    p.add_argument("--lpips-net", choices=sorted(LPIPS_NETS), default="alex")
    p.add_argument("--device", default="cpu", help="cpu or cuda (models and metrics)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default: torch's choice; 1 "
        "is often faster on a machine busy with other work)",
    )
    p.add_argument("--save-images", action="store_true", help="write every scored image")
    p.add_argument(
        "--allow-leakage",
        action="store_true",
        help="score even if test photos are also training photos (the figures will be inflated)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run one of the two forms, write the report folder and print the table."""
    by_data = args.data is not None or bool(args.models)
    by_folders = args.pred is not None or args.truth is not None
    if by_data == by_folders:
        raise UsageError("give either --data DIR --models NAME... or --pred DIR --truth DIR")
    if args.reference and args.hints is not None:
        raise UsageError(
            "--reference and --hints are measured apart (the reference's rows are scored on the "
            "right half of each photo, the points' on the whole photo): run evaluate once with each"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        inputs = _data_form(args) if by_data else _folder_form(args)
        test, predictions, protocol, notes, in_source = inputs
        options = {
            "size": args.size if by_data else None,
            "lpips_net": args.lpips_net,
            "device": args.device,
            "progress": not args.quiet,
            "right_half_only": args.reference,
        }
        evaluation = evaluate(test, predictions, protocol=protocol, notes=notes, **options)
        if in_source is not None:
            in_protocol = {**protocol, "split": IN_SOURCE}
            in_notes = _reference_notes(in_source) if args.reference else []
            evaluation.add_in_source(
                evaluate(in_source, predictions, protocol=in_protocol, notes=in_notes, **options)
            )
        write_report_folder(evaluation, args.output, save_images=args.save_images)
        if args.json is not None:
            in_models = evaluation.in_source.report["models"] if evaluation.in_source else None
            write_json(evaluation.report["models"], args.json, in_source=in_models)
    except Pix2ColorError:
        raise
    except (OSError, ValueError) as e:  # metric weights not installed, a report not writable
        raise WorkFailed(str(e)) from e
    report = evaluation.report
    if evaluation.in_source is not None:
        print(f"out-of-source test ({report['n']} photos from sources never seen in training):")
    print(markdown_table(report["models"]))
    for note in report["notes"]:
        print(note)
    if evaluation.in_source is not None:
        in_report = evaluation.in_source.report
        print(f"in-source test ({in_report['n']} held-out scenes of the training sources):")
        print(markdown_table(in_report["models"]))
        for note in in_report["notes"]:
            print(note)
    for line in gray_lines(evaluation):
        print(line)
    if protocol.get("hints"):
        print("colour points (simulated from the truth):")
        print(hints_curve(report["models"], protocol["hints"]))
    if protocol.get("reference"):
        print("a reference photo (scored on the right halves; the reference is the left half):")
        print(reference_table(report["models"], protocol["reference"]))
    print(f"wrote {args.output}/report.md, report.json, per_image.csv, metrics.png and "
          f"{len(report['sheets'])} comparison sheet(s) in {report['seconds']:.0f} s")  # fmt: skip
    return EXIT_OK


def _data_form(args: argparse.Namespace) -> Inputs:
    """--data/--models -> (test set, {model name: Colorizer}, protocol, notes)."""
    from pix2color.inference.colorizer import Colorizer

    if args.data is None or not args.models:
        raise UsageError(
            "--data and --models go together, e.g. --data data/photos --models default"
        )
    if args.size < 32:
        raise UsageError(
            f"--size {args.size} is too small: LPIPS needs 32 or more (256 is the usual protocol)"
        )
    if args.reference and args.size < 64:
        raise UsageError(
            f"--size {args.size} is too small for --reference: its figures are on right halves, "
            "and LPIPS needs them 32 wide or more; give 64 or more (256 is the usual protocol)"
        )
    names = list(args.models)
    if len(set(names)) != len(names) or {GRAY, "truth"} & set(names):
        raise UsageError(
            f"model names must be distinct and neither {GRAY!r} nor 'truth', got {names}"
        )
    # a missing model or missing metric weights fail now, not after minutes of work
    colorizers = {m: Colorizer.from_pretrained(m, size=args.size, device=args.device)
                  for m in names}  # fmt: skip
    lpips_state_dict(args.lpips_net)
    inception_weights_path()
    test, files = load_test_split(args.data, args.size, args.split)
    in_source = None
    if args.split == "test" and has_split(args.data, IN_SOURCE):
        in_source, in_files = load_test_split(args.data, args.size, IN_SOURCE)
        files = files + in_files
    leaks = find_leaks(args.data, files)
    which = "out-of-source test split" if in_source is not None else f"{args.split} split"
    protocol = {
        "form": "data",
        "data": str(args.data),
        "split": args.split,
        "description": f"the {which} of {args.data}, each photo's centre square resized to "
        f"{args.size}x{args.size} (bicubic) and coloured from its 8-bit grey version.",
        "leakage_checked": leaks is not None,
        "leakage": [vars(x) for x in leaks or []],
    }
    predictions: dict[str, Any] = dict(colorizers)
    if args.hints is not None:
        counts = parse_counts(args.hints)
        rows = {m: {n: f"{m} +{n} points" for n in counts} for m in names}
        predictions = {rows[m][n]: WithPoints(c, n) for m, c in colorizers.items() for n in counts}
        protocol["hints"] = {
            "counts": counts,
            "radius": HINT_RADIUS,
            "rows": rows,
            "description": f"Each model given N colour points per photo (N = "
            f"{', '.join(map(str, counts))}), simulated from the truth: positions uniform at "
            "random over the photo (a generator seeded by the photo's name: the same points for "
            f"every model and run, the first N of one sequence), discs of radius {HINT_RADIUS} "
            "pixels, colour the truth's mean Lab over the disc, spread by the classical "
            "edge-aware propagation (pix2color.propagate). Points come from the truth: an upper "
            "bound on what a careful person gives.",
        }
    notes = _leakage_notes(args, leaks)
    if args.reference:
        predictions = _reference_rows(colorizers, test, in_source, protocol, args.size)
        notes += _reference_notes(test)
    return test, predictions, protocol, notes, in_source


# each model's rows with --reference: {colour: row name template}
REFERENCE_ROWS = {"own palette": "{} +own palette", "other photo's palette": "{} +other's palette"}


def _reference_rows(
    colorizers: dict[str, Any],
    test: TestSet,
    in_source: TestSet | None,
    protocol: dict[str, Any],
    size: int,
) -> dict[str, Any]:
    """--reference: each model's automatic, own-palette and other-palette rows; the protocol
    written into `protocol` (the report's description and the rows' names)."""
    for split, photos in (("", test), (" (in-source)", in_source)):
        if photos is not None and len(photos.names) < 2:
            raise UsageError(
                f"--reference needs 2 or more photos{split}: the other photo's palette comes "
                f"from another photo of the split, and it has {len(photos.names)}"
            )
    rows, predictions = {}, {}
    for m, c in colorizers.items():
        own, other = (t.format(m) for t in REFERENCE_ROWS.values())
        rows[m] = dict(zip(("automatic", *REFERENCE_ROWS), (m, own, other), strict=True))
        predictions |= {m: c, own: WithReference(c, OWN), other: WithReference(c, OTHER)}
    protocol["description"] += (
        f" Every figure is on the right half of each square only ({size - size // 2} pixels "
        f"wide, {size} high): the reference's protocol (below)."
    )
    protocol["reference"] = {
        "rows": rows,
        "reference": "the truth's left half",
        "scored": "the right half",
        "other": "photo k takes the left half of photo (k + n // 2) mod n, in the split's order",
        "description": "Another photo of the same scene is rarely available, so each photo is "
        "given **its own palette from a different crop**: the reference is the truth's left "
        "half (in colour), and every figure is on the right half only, the part the reference "
        "does not show, so no score can come from copying it. Rows: automatic (no reference); "
        "own palette (the photo's own left half); other's palette (photo k takes the left half "
        "of photo (k + n/2) mod n of the split, in its order: a reference that does not "
        "match); the grey input, the floor. A model that is not a guided-colour network gets "
        "the classical palette transfer (pix2color.reference), a guided one reads the "
        "reference's histogram, as `colorize --reference` does. The own-palette figures are an "
        "upper bound for a good reference (the same scene's colours); FID and KID are on the "
        "halves too: see the note above.",
    }
    return predictions


def _reference_notes(test: TestSet) -> list[str]:
    """The report's notes on what --reference's figures are worth, and on colourless halves."""
    notes = [
        "FID and KID with --reference are on the right halves, which Inception sees stretched "
        "to 299x299, the truth's halves alike: they rank this table's rows among themselves, "
        "but are not comparable with figures on whole photos."
    ]
    colorless = colorless_references(test)
    if colorless:
        notes.append(
            f"{len(colorless)} photo(s) have a left half without colour, which gives no "
            "palette: a photo given it as its reference (own or other's) keeps its automatic "
            f"colour ({', '.join(colorless[:5])}" + (" ...)" if len(colorless) > 5 else ")")
        )
    return notes


def parse_counts(text: str) -> list[int]:
    """'0,1,2,5' -> [0, 1, 2, 5]; a UsageError for anything else."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--hints {text!r}: give numbers of points, e.g. 0,1,2,5,10") from None
    if not counts or min(counts) < 0 or max(counts) > 1000 or len(set(counts)) != len(counts):
        raise UsageError(f"--hints {text}: give distinct numbers of points from 0 to 1000")
    return counts


def _leakage_notes(args: argparse.Namespace, leaks: list[Leak] | None) -> list[str]:
    """The report's notes on leakage; refuses leaked test photos unless --allow-leakage."""
    if leaks is None:
        log.warning("%s has no training split: leakage cannot be checked", args.data)
        return ["Leakage not checked: the folder has no training split."]
    if not leaks:
        return []
    message = leak_message(leaks)
    if not args.allow_leakage:
        raise UsageError(
            message + "; re-run `pix2color data prepare` so that each scene is in one split, or "
            "pass --allow-leakage to score anyway (the figures will be inflated)"
        )
    print(f"WARNING: --allow-leakage: {message}; these figures are INFLATED and must not "
          "be reported as held-out results", file=sys.stderr)  # fmt: skip
    return [f"**WARNING: train/test leakage was allowed**: {message}."]


def _folder_form(args: argparse.Namespace) -> Inputs:
    """--pred/--truth -> (truth set, {pred folder name: images}, protocol, notes)."""
    if args.pred is None or args.truth is None:
        raise UsageError("--pred and --truth go together")
    if args.hints is not None:
        raise UsageError("--hints goes with --data and --models: points are simulated per model")
    if args.reference:
        raise UsageError("--reference goes with --data and --models: each model is given the "
                         "references as it colours")  # fmt: skip
    lpips_state_dict(args.lpips_net)
    inception_weights_path()
    test, pred = load_pairs(args.pred, args.truth)
    label = args.pred.resolve().name
    if label in (GRAY, "truth"):
        label = f"{label}_pred"  # the baseline row and the truth images keep their names
    protocol = {
        "form": "pred/truth",
        "pred": str(args.pred),
        "truth": str(args.truth),
        "description": f"{args.pred} compared with {args.truth}, matched by file name, at "
        "their own size.",
    }
    notes = ["Leakage not checked: the training data behind these results is unknown."]
    return test, {label: pred}, protocol, notes, None
