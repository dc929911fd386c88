"""A generator exported to ONNX (pix2color.export), run by onnxruntime on the CPU.

`OnnxGenerator` is called like the torch module (L in, ab out, torch tensors), so that
`Colorizer(OnnxGenerator("model.onnx"))` and `load_generator("model.onnx")` work unchanged. The
export was traced on sides that are multiples of the model's `factor` (the torch modules pad with
Python branches a trace cannot keep), so the padding and cropping happen here instead. Only
onnxruntime is needed at run time; the `onnx` package is needed to export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pix2color.errors import ModelNotFoundError

if TYPE_CHECKING:  # torch only where a torch tensor is given: `run` takes numpy arrays
    import torch

# the export's metadata_props: what a runtime needs to rebuild the torch model's behaviour
FACTOR_KEY = "pix2color.factor"  # sides are padded to a multiple of this
ARCHITECTURE_KEY = "pix2color.architecture"
CONFIG_KEY = "pix2color.config"  # JSON: the generator's constructor arguments
METADATA_KEY = "pix2color.metadata"  # JSON: config.json's free-form metadata
INPUT_NAME, OUTPUT_NAME = "L", "ab"
DEFAULT_OPSET = 17  # the export's opset: run by every onnxruntime since 1.13
# the export's check (onnx_export.py; here so that `pix2color export --help` needs no torch):
# odd sides on purpose: the runtime's padding and cropping are part of what is checked
CHECK_SHAPES = ((1, 1, 200, 300), (2, 1, 256, 256), (1, 1, 97, 131))
CHECK_TOLERANCE = 1e-3  # in ab / 110 units: 0.11 Lab units


def _onnxruntime(path: Path):
    try:
        import onnxruntime
    except ImportError:
        # a ModelNotFoundError, so that every command that loads models reports it in one line
        raise ModelNotFoundError(
            f"{path}: running an .onnx model needs onnxruntime, which is not installed; "
            "pip install -r requirements.txt"
        ) from None
    return onnxruntime


class OnnxGenerator:
    """An ONNX export on onnxruntime: L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1].

    CPU only (CPUExecutionProvider), with `threads` intra-op threads (default: torch's count
    where torch is loaded, else the CPUs this process may use).
    The colour setting was fixed at export: an ONNX model has none to turn.
    """

    color_knob = None

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"{self.path}: no such ONNX file")
        ort = _onnxruntime(self.path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1  # one chain of operators: more threads would only wait
        # no busy-waiting after a run: spinning threads would steal the CPU from the torch code
        # (Lab conversion, upsampling) that runs between two calls, which made a whole
        # Colorizer call 1.5x slower than with torch alone in bench/bench_onnx.py
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's errors are pybind classes derived from Exception
            raise ModelNotFoundError(f"{self.path}: not a valid ONNX model ({e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if FACTOR_KEY not in meta:
            raise ModelNotFoundError(
                f"{self.path}: an ONNX model without pix2color's metadata ({FACTOR_KEY}); "
                "export it with `pix2color export MODEL OUTPUT.onnx`"
            )
        self.factor = int(meta[FACTOR_KEY])
        self.info: dict[str, Any] = {
            "architecture": meta.get(ARCHITECTURE_KEY, "unknown"),
            "config": json.loads(meta.get(CONFIG_KEY, "{}")),
            "metadata": {**json.loads(meta.get(METADATA_KEY, "{}")), "onnx": str(self.path)},
        }
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def run(self, L: np.ndarray) -> np.ndarray:
        """(B, 1, H, W) float32 in [-1, 1], any H and W -> ab (B, 2, H, W) float32 (numpy)."""
        if L.ndim != 4 or L.shape[1] != 1:
            raise ValueError(f"L must be (B, 1, H, W), got shape {tuple(L.shape)}")
        h, w = L.shape[-2:]
        ph, pw = (-h) % self.factor, (-w) % self.factor
        # the same edge-replicated padding the torch module does inside
        x = np.pad(np.asarray(L, np.float32), ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        (ab,) = self.session.run([self.output_name], {self.input_name: x})
        return ab[..., :h, :w]

    def __call__(self, L: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1], any H and W -> ab (B, 2, H, W) float32 on the CPU."""
        import torch

        ab = self.run(L.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(np.ascontiguousarray(ab))

    def eval(self) -> OnnxGenerator:
        """Already in inference mode (the export was traced in eval mode): returns self."""
        return self

    def to(self, device: str | torch.device) -> OnnxGenerator:
        """Returns self for the CPU; any other device is refused (use the torch model there)."""
        if str(device).split(":")[0] != "cpu":
            raise ValueError(
                f"{self.path.name}: an ONNX model runs on the CPU (onnxruntime), not on "
                f"{device}; use device 'cpu', or the torch model for a GPU"
            )
        return self

    def __repr__(self) -> str:
        return f"OnnxGenerator({str(self.path)!r}, factor={self.factor})"


def load_onnx(path: str | Path) -> tuple[OnnxGenerator, dict[str, Any]]:
    """An exported .onnx file -> (OnnxGenerator, info) with info shaped like config.json."""
    G = OnnxGenerator(path)
    return G, G.info


def default_threads() -> int:
    """Intra-op threads when none are given: torch's count where torch is loaded (the CLI sets
    it), else the CPUs this process may use."""
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    return len(os.sched_getaffinity(0))
