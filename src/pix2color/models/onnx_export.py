"""ONNX export of a generator (`pix2color export` is in commands/export.py; Colorizer's
onnxruntime backend exports through it too, models/onnx_cache.py).

The export uses PyTorch's TorchScript exporter (`dynamo=False`): it traces one forward pass and
needs no package beyond `onnx`. Both generators pad sides that are not multiples of their
`factor` with Python branches, which a trace would bake in; so the trace runs on sides that are
already multiples (no branch taken), the batch, H and W stay dynamic, and OnnxGenerator pads and
crops around the session instead. The factor, architecture, constructor config and metadata go
into the file's metadata_props, so an .onnx file describes itself like a model folder does.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pix2color.files import write_atomic
from pix2color.models.onnx_generator import (  # noqa: F401 - their public home is this module
    ARCHITECTURE_KEY,
    CHECK_SHAPES,
    CHECK_TOLERANCE,
    CONFIG_KEY,
    DEFAULT_OPSET,
    FACTOR_KEY,
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    OnnxGenerator,
)

__all__ = ["OnnxGenerator", "export_onnx", "max_ab_difference"]

log = logging.getLogger(__name__)


def needs(package: str) -> str:
    """The message for a missing optional package of the export."""
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
    try:
        import onnx
    except ImportError:
        raise ImportError(needs("onnx")) from None
    factor = getattr(G, "factor", None)
    if not isinstance(factor, int) or factor < 1:
        raise TypeError(f"{type(G).__name__} has no integer `factor` (the multiple it pads to)")
    arch = G.architecture
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
    write_atomic(path, model.SerializeToString())
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
