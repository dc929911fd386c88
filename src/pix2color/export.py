"""ONNX export of a generator: the public path of models/onnx_export.py (kept since 0.1.0)."""

from pix2color.models.onnx_export import (
    CHECK_SHAPES,
    CHECK_TOLERANCE,
    DEFAULT_OPSET,
    OnnxGenerator,
    export_onnx,
    max_ab_difference,
    needs,
)

__all__ = [
    "CHECK_SHAPES",
    "CHECK_TOLERANCE",
    "DEFAULT_OPSET",
    "OnnxGenerator",
    "export_onnx",
    "max_ab_difference",
    "needs",
]
