"""ONNX export of a generator, and the `pix2color export` command.

The export uses PyTorch's TorchScript exporter (`dynamo=False`): it traces one forward pass and
needs no package beyond `onnx`. Both generators pad sides that are not multiples of their
`factor` with Python branches, which a trace would bake in; so the trace runs on sides that are
already multiples (no branch taken), the batch, H and W stay dynamic, and OnnxGenerator pads and
crops around the session instead. The factor, architecture, constructor config and metadata go
into the file's metadata_props, so an .onnx file describes itself like a model folder does.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pix2color.models.onnx_generator import (
    ARCHITECTURE_KEY,
    CONFIG_KEY,
    FACTOR_KEY,
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    OnnxGenerator,
)

__all__ = ["OnnxGenerator", "export_onnx", "max_ab_difference", "register"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # run by every onnxruntime since 1.13
# odd sides on purpose: the runtime's padding and cropping are part of what is checked
CHECK_SHAPES = ((1, 1, 200, 300), (2, 1, 256, 256), (1, 1, 97, 131))
CHECK_TOLERANCE = 1e-3  # in ab / 110 units: 0.11 Lab units


def _needs(package: str) -> str:
    return f"ONNX export needs {package}, which is not installed; pip install -r requirements.txt"


def export_onnx(
    G: nn.Module,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write G as ONNX, atomically: input L (B, 1, H, W) in [-1, 1] -> output ab (B, 2, H, W).

    B, H and W are dynamic, but H and W must be multiples of G.factor (OnnxGenerator pads).
    """
    from pix2color.models.io import _architecture

    try:
        import onnx
    except ImportError:
        raise ImportError(_needs("onnx")) from None
    factor = getattr(G, "factor", None)
    if not isinstance(factor, int) or factor < 1:
        raise TypeError(f"{type(G).__name__} has no integer `factor` (the multiple it pads to)")
    arch = _architecture(G)
    path = Path(path)
    device = next(G.parameters()).device
    # batch 2 and H != W, so that neither a batch of 1 nor a square can be baked in as a constant
    L = torch.zeros(2, 1, factor, 2 * factor, device=device)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # the trace takes no padding branch (the sides are multiples of factor), which is
        # exactly what the tracer warns about; and the TorchScript exporter is deprecated but
        # still the one that needs no onnxscript and keeps the sides dynamic through `if ph or pw`
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        torch.onnx.export(
            G,
            (L,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            },
            training=torch.onnx.TrainingMode.EVAL,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(
        model,
        {
            FACTOR_KEY: str(factor),
            ARCHITECTURE_KEY: arch,
            CONFIG_KEY: json.dumps(G.config),
            METADATA_KEY: json.dumps(metadata or {}),
        },
    )
    model.doc_string = (
        f"pix2color {arch} generator: L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1] "
        f"(ab / 110); H and W must be multiples of {factor}: pad (edge replicate), then crop"
    )
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(model.SerializeToString())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.debug("exported %s to %s (opset %d, factor %d)", arch, path, opset, factor)
    return path


@torch.inference_mode()
def max_ab_difference(
    G: nn.Module, other: nn.Module | OnnxGenerator, shapes=CHECK_SHAPES, seed: int = 0
) -> float:
    """Largest |ab_G - ab_other| (ab / 110 units) over uniform random L of each (B, 1, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        L = torch.rand(shape, generator=gen) * 2 - 1
        diff = (G(L).float().cpu() - other(L).float().cpu()).abs().max().item()
        worst = max(worst, diff)
    return worst


# ---------------------------------------------------------------- the `export` command
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` command to the CLI's subparsers."""
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX (for onnxruntime)",
        description="Write a model as one .onnx file (dynamic batch, height and width) that "
        "onnxruntime runs and `--model` accepts like a model folder. The export is then "
        "compared with the torch model on random inputs of odd sizes "
        f"({', '.join('x'.join(map(str, s)) for s in CHECK_SHAPES)}); a maximum ab difference "
        f"above {CHECK_TOLERANCE:g} fails and writes nothing.",
    )
    p.add_argument("model", help="shipped model name or path (folder, .safetensors, checkpoint)")
    p.add_argument("output", help="the .onnx file to write (its folder must exist)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: 17)")
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime with torch before writing OUTPUT (default: on)",
    )
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    from pix2color.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from pix2color.cli import report_error as _error
    from pix2color.models.io import ModelNotFoundError, load_generator

    out = Path(args.output)
    if out.suffix != ".onnx":
        return _error(f"{out}: the output must end in .onnx (that is how models load)", EXIT_USAGE)
    if not out.parent.is_dir():
        return _error(f"{out.parent}: no such folder; create it or write elsewhere", EXIT_USAGE)
    if Path(args.model).suffix == ".onnx":
        return _error(f"{args.model}: already ONNX; export a torch model", EXIT_USAGE)
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            return _error(_needs(package), EXIT_FAILED)
    try:
        G, info = load_generator(args.model)
    except (ModelNotFoundError, ValueError) as e:
        return _error(str(e), EXIT_USAGE)

    # written beside OUTPUT first, and renamed only once it has passed the check
    staged = out.with_name(out.name + ".unchecked")
    try:
        export_onnx(G, staged, opset=args.opset, metadata=info.get("metadata"))
        diff = None
        if args.check:
            diff = max_ab_difference(G, OnnxGenerator(staged))
            if not diff <= CHECK_TOLERANCE:  # `not <=` also fails a NaN
                shapes = ", ".join("x".join(map(str, s)) for s in CHECK_SHAPES)
                return _error(
                    f"{args.model}: onnxruntime differs from torch by {diff:.2e} in ab (more "
                    f"than {CHECK_TOLERANCE:g}) on {shapes}; {out} not written",
                    EXIT_FAILED,
                )
        os.replace(staged, out)
    # a failed write, or the exporter refusing G (an operator it cannot express): one line
    except (OSError, RuntimeError, TypeError, ValueError) as e:
        return _error(f"{args.model}: export failed: {e}", EXIT_FAILED)
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
