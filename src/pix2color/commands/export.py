"""`pix2color export`: write a model as one .onnx file that onnxruntime runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK, UsageError, WorkFailed


def register(sub: argparse._SubParsersAction) -> None:
    from pix2color.models.onnx_generator import CHECK_SHAPES, CHECK_TOLERANCE, DEFAULT_OPSET

    p = sub.add_parser(
        "export",
        help=COMMANDS["export"],
        description="Write a model as one .onnx file (dynamic batch, height and width) that "
        "onnxruntime runs and `--model` accepts like a model folder. The export is then "
        "compared with the torch model on random inputs of odd sizes "
        f"({', '.join('x'.join(map(str, s)) for s in CHECK_SHAPES)}); a maximum ab difference "
        f"above {CHECK_TOLERANCE:g} fails and writes nothing.",
    )
    p.add_argument("model", help="installed model name or path (folder, .safetensors, checkpoint)")
    p.add_argument("output", help="the .onnx file to write (its folder must exist)")
    p.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})"
    )
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime with torch before writing OUTPUT (default: on)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pix2color.models.io import load_generator
    from pix2color.models.onnx_export import (
        CHECK_SHAPES,
        CHECK_TOLERANCE,
        OnnxGenerator,
        export_onnx,
        max_ab_difference,
        needs,
    )

    out = Path(args.output)
    if out.suffix != ".onnx":
        raise UsageError(f"{out}: the output must end in .onnx (that is how models load)")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such folder; create it or write elsewhere")
    if Path(args.model).suffix == ".onnx":
        raise UsageError(f"{args.model}: already ONNX; export a torch model")
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise WorkFailed(needs(package)) from None
    G, info = load_generator(args.model)

    # written beside OUTPUT first, and renamed only once it has passed the check
    staged = out.with_name(out.name + ".unchecked")
    try:
        export_onnx(G, staged, opset=args.opset, metadata=info.get("metadata"))
        diff = None
        if args.check:
            diff = max_ab_difference(G, OnnxGenerator(staged))
            if not diff <= CHECK_TOLERANCE:  # `not <=` also fails a NaN
                shapes = ", ".join("x".join(map(str, s)) for s in CHECK_SHAPES)
                raise WorkFailed(
                    f"{args.model}: onnxruntime differs from torch by {diff:.2e} in ab (more "
                    f"than {CHECK_TOLERANCE:g}) on {shapes}; {out} not written"
                )
        os.replace(staged, out)
    # a failed write, or the exporter refusing G (an operator it cannot express): one line
    except (OSError, RuntimeError, TypeError, ValueError) as e:
        raise WorkFailed(f"{args.model}: export failed: {e}") from None
    finally:
        staged.unlink(missing_ok=True)
    mib = out.stat().st_size / 2**20
    checked = (
        f"max |ab difference| vs torch {diff:.1e} (random L, {len(CHECK_SHAPES)} odd sizes)"
        if diff is not None
        else "not checked"
    )
    print(f"exported {args.model} -> {out} ({mib:.1f} MiB, opset {args.opset}); {checked}")
    return EXIT_OK
