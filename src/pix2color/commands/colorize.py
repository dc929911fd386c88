"""`pix2color colorize`: colour photos and folders at their full resolution."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pix2color.commands import COMMANDS, print_error
from pix2color.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("colorize", help=COMMANDS["colorize"])
    c.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    c.add_argument("-o", "--output", required=True, help="folder for the results")
    add_model_arguments(c)
    c.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave out photos whose result is already in the output folder (an interrupted "
        "archive job continues where it stopped)",
    )
    c.add_argument(
        "--shard",
        metavar="I/N",
        help="colour only the I-th of N equal shares of the photos (0 <= I < N), e.g. one share "
        "per machine or process over the same input and output folders",
    )
    c.add_argument(
        "--depth",
        choices=["8", "16", "input"],
        default="input",
        help="bits per channel of the results: 8, 16, or the input's own (default: 16-bit grey "
        "scans give 16-bit colour, 8-bit photos 8-bit); 16 bits only for TIFF and PNG outputs, "
        "JPEG and WebP stay 8-bit",
    )
    c.add_argument(
        "--hints",
        metavar="FILE_OR_DIR",
        help='colour points, "this spot is this colour": a JSON file for one photo, '
        '{"points": [{"x": 120, "y": 80, "color": "#2050c0", "radius": 3}]} in the photo\'s own '
        "pixels; or, for several photos, a folder holding one <photo stem>.json per photo (the "
        "photo's path inside its input folder, with .json for its extension); photos without "
        "one are coloured automatically",
    )
    c.add_argument(
        "--reference",
        metavar="PHOTO",
        help="a colour photo whose palette every photo takes (a photo of the same place or "
        "era, a colour portrait of the same person): its colours per lightness, never its "
        "content; any model (a guided-colour model reads it itself); --hints go on top of it",
    )
    c.add_argument("--batch-size", type=int, default=4)
    c.add_argument("--device", default="cpu", help="cpu or cuda")
    c.add_argument(
        "--threads",
        type=int,
        help="torch threads for the network on the CPU (default: one fewer than the CPUs this "
        "process may use, at least 1 and at most torch's own default: the reader and writer "
        "threads that decode and save photos meanwhile keep the other CPU busy)",
    )
    c.add_argument("-q", "--quiet", action="store_true")
    c.set_defaults(func=run)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """--model, --size and the colour settings, shared by the commands that colour photos."""
    from pix2color.models.color_settings import GAIN_RANGE, TEMPERATURE_RANGE

    p.add_argument(
        "--model", default="default", help="installed model name or path (default: default)"
    )
    p.add_argument(
        "--size",
        type=int,
        default=256,
        help="working size: the long side the model sees (smaller often gives bolder colour)",
    )
    p.add_argument(
        "--upsampling",
        help="how the working-size colour is brought to full size: bilinear (default), or "
        "guided by the photo's own luminance (colour edges follow its edges more closely, but "
        "its texture gets into the colour: worse FID and LPIPS; docs/colorize.md)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "onnx", "torch"),
        default="auto",
        help="what runs the network: onnxruntime where it is installed and gives the same "
        "colour (checked once per model, then cached in ~/.cache/pix2color or "
        "$PIX2COLOR_CACHE), else torch (auto, the default); or insist on one",
    )
    p.add_argument(
        "--temperature",
        type=float,
        help="colour temperature of class models (lower = bolder, higher = safer; "
        f"{TEMPERATURE_RANGE[0]:g} to {TEMPERATURE_RANGE[1]:g}; default: the model's "
        "calibrated value)",
    )
    p.add_argument(
        "--gain",
        type=float,
        help="colour gain of models like default that predict colour directly (higher = bolder, "
        f"lower = safer, 1 = the network's own; {GAIN_RANGE[0]:g} to {GAIN_RANGE[1]:g}; default: "
        "the model's calibrated value)",
    )


def output_paths(inputs: list[str], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Map each input image to its output path (folders keep their inner layout); the output
    folder is left out of the search when it lies inside an input folder."""
    from pix2color.photo import find_images

    pairs: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        files, missing = find_images([p], exclude=out_dir)
        errors.extend(missing)
        for f in files:
            rel = f.relative_to(p) if p.is_dir() else Path(f.name)
            pairs.append((f, out_dir / rel))
    return pairs, errors


def run(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard) if args.shard else None
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: give 1 or more")
    threads = (args.threads or network_threads()) if args.device == "cpu" else None
    torch = sys.modules.get("torch")  # loaded already (a caller in Python): restored after
    before = torch.get_num_threads() if torch is not None else None
    try:
        return colorize(args, shard, threads)
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)  # as it was: run() may be called from Python


def colorize(args: argparse.Namespace, shard: tuple[int, int] | None, threads: int | None) -> int:
    from tqdm import tqdm

    from pix2color.inference.colorizer import Colorizer
    from pix2color.photo import ImageError, output_depth, save_like

    set_torch_threads(threads)
    colorizer = Colorizer.from_pretrained(
        args.model, size=args.size, device=args.device, temperature=args.temperature,
        gain=args.gain, backend=args.backend, threads=threads,
        **({"upsampling": args.upsampling} if args.upsampling else {}),
    )  # fmt: skip
    set_torch_threads(threads)  # loading the model may have loaded torch
    if args.reference:  # checked before any photo is read: a bad reference fails the command
        colorizer = colorizer.with_reference(args.reference)
    out_dir = Path(args.output)
    targets, todo, errors, skipped = plan(args, out_dir, shard)
    hints = plan_hints(args.hints, out_dir, targets, todo, errors) if args.hints else None

    done, start = 0, time.time()
    bar = tqdm(total=len(todo), unit="photo", disable=args.quiet or len(todo) < 2, file=sys.stderr)

    def depth(photo) -> int:  # per photo: its own depth, and what its output format can hold
        return output_depth(photo, targets[photo.path], args.depth)

    def save(img, photo) -> Path:
        try:
            return save_like(img, photo, targets[photo.path])
        except OSError as e:
            raise ImageError(f"{photo.path}: cannot write {targets[photo.path]} ({e})") from None

    # decoding, the network and encoding overlap (Colorizer.colorize_folder)
    guidance = hints.guidance_of(colorizer) if hints else None
    results = colorizer.colorize_folder(
        todo, save, batch_size=args.batch_size, depth=depth, guidance=guidance
    )
    for path, written, err in results:
        bar.update(1)
        if err is not None:
            errors.append(err)
            bar.write(f"error: {err}", file=sys.stderr)
            continue
        done += 1
        if hints is not None and not args.quiet:
            bar.write(f"{path} -> {written} ({hints.describe(path)})", file=sys.stdout)
        elif not args.quiet and len(todo) < 2:
            print(f"{path} -> {written}")
    bar.close()
    secs = time.time() - start
    failed = len(errors)
    print(
        f"coloured {done} photo(s) into {out_dir} in {secs:.1f} s"
        + (f"; {skipped} already there (--skip-existing)" if skipped else "")
        + (f"; share {args.shard} of the photos" if shard else "")
        + (f"; {failed} failed (see the errors above)" if failed else "")
        + f" [model {args.model}, working size {args.size}, {colorizer.backend}"
        + (f", colours like {args.reference}" if args.reference else "")
        + "]"
    )
    return EXIT_FAILED if failed or done + skipped == 0 and not shard else EXIT_OK


def plan(
    args: argparse.Namespace, out_dir: Path, shard: tuple[int, int] | None
) -> tuple[dict[Path, Path], list[Path], list[str], int]:
    """What to colour -> (input -> output path, the inputs to do, errors printed, how many
    --skip-existing left out). Every input that will not be coloured gets its error line."""
    from pix2color.photo import output_written

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: is a file, not a folder; give --output a folder")
    for item in map(Path, args.inputs):
        if item.is_dir() and out_dir.resolve().is_relative_to(item.resolve()):
            print(f"note: the output folder {out_dir} is inside {item}: it is not searched")
    pairs, errors = output_paths(args.inputs, out_dir)
    for e in errors:
        print_error(e)
    targets: dict[Path, Path] = {}
    todo: list[Path] = []
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            errors.append(f"{src}: the output would overwrite the input; choose another --output")
            print_error(errors[-1])
        elif dst in targets.values():
            errors.append(f"{src}: same output name as another input ({dst}); colour them apart")
            print_error(errors[-1])
        else:
            targets[src] = dst
            todo.append(src)
    if shard is not None:  # the same sorted list on every worker: share k goes to worker k % N
        i, n = shard
        todo = todo[i::n]
    skipped = 0
    if args.skip_existing:
        before = len(todo)
        todo = [src for src in todo if output_written(targets[src]) is None]
        skipped = before - len(todo)
    return targets, todo, errors, skipped


class Hints:
    """The colour points of the photos to colour: {photo: (hints file, its points or None)}."""

    def __init__(self, files: dict[Path, tuple[Path, list | None]]) -> None:
        self.files = files

    def guidance_of(self, colorizer):
        """A function of a photo giving its Guidance: its points (the pipeline checks them
        against the photo, naming the photo and its hints file) and the run's reference."""

        def of(photo):
            source, points = self.files.get(photo.path, (None, None))
            return colorizer.guidance(points, f"{photo.path}: not coloured: {source}")

        return of

    def describe(self, path: Path) -> str:
        source, points = self.files[path]
        if points is None:
            return f"automatic colour: no {source}"
        return f"{len(points)} colour point(s) from {source}"


def plan_hints(
    hints: str,
    out_dir: Path,
    targets: dict[Path, Path],
    todo: list[Path],
    errors: list[str],
) -> Hints:
    """--hints FILE (one photo) or DIR (<path inside the input folder>.json per photo) ->
    Hints. A photo whose hints file cannot be used gets its error line and leaves `todo`."""
    from pix2color.guide.points import PointsError, read_points

    where = Path(hints)
    if not where.exists():
        raise UsageError(f"--hints {where}: no such file or folder")
    if where.is_dir():
        # the output mirrors the photo's path inside its input folder: so does its hints file
        files = {src: where / targets[src].relative_to(out_dir).with_suffix(".json")
                 for src in todo}  # fmt: skip
    else:
        if len(todo) > 1:
            raise UsageError(
                f"--hints {where}: a file gives the points of one photo, and {len(todo)} are to be "
                "coloured; give a folder holding one <photo stem>.json per photo"
            )
        files = {src: where for src in todo}
    found: dict[Path, tuple[Path, list | None]] = {}
    for src, file in files.items():
        if not file.is_file():
            found[src] = (file, None)
            continue
        try:
            found[src] = (file, read_points(file))
        except PointsError as e:
            errors.append(f"{src}: not coloured: {e}")
            print_error(errors[-1])
    todo[:] = [src for src in todo if src in found]
    if where.is_dir():  # a typo in a file name would otherwise go unnoticed
        used = {(where / dst.relative_to(out_dir).with_suffix(".json")).resolve()
                for dst in targets.values()}  # fmt: skip
        for extra in sorted(where.rglob("*.json")):
            if extra.resolve() not in used:
                print(f"note: {extra} matches no photo to colour; it is not used")
    return Hints(found)


def network_threads() -> int:
    """Threads for the network (onnxruntime's or torch's) when the pipeline's reader and writer
    run beside it: one CPU left to them (on 2 CPUs: 1 thread; bench/bench_folder.py), never more
    than the machine's cores. The network's threads meet at a barrier after every layer, so a
    thread that shares its CPU with the reader, the writer or another process makes all wait."""
    import os

    return max(1, min(os.cpu_count() or 1, len(os.sched_getaffinity(0)) - 1))


def set_torch_threads(threads: int | None) -> None:
    """torch's threads for the network, where torch is loaded (it is not, for onnxruntime)."""
    if threads is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def parse_shard(text: str) -> tuple[int, int]:
    """'1/4' -> (1, 4); a UsageError for anything else."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: give I/N with whole numbers, e.g. 0/2") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {text}: I must be 0 to N-1 and N at least 1, e.g. 0/2 and 1/2")
    return i, n
