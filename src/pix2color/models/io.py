"""Shipped weights: one folder per model with `model.safetensors` and `config.json`.

`config.json` holds the generator's constructor arguments (so the weights rebuild their own
network) and free-form metadata (training data, recipe, metrics). A training checkpoint
(`best.pt` / `last.pt`) can be loaded the same way, and so can an ONNX export (`.onnx`, run by
onnxruntime: see onnx_generator.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pix2color.models.encoder_unet import MobileNetUNet
from pix2color.models.unet import UNetGenerator

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet": UNetGenerator,
    "mobilenet_unet": MobileNetUNet,
}
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


class ModelNotFoundError(FileNotFoundError):
    """A model name or path that does not lead to weights; the message lists what exists."""


def models_dir() -> Path:
    """Where shipped models live: $PIX2COLOR_MODELS, else the repository's models/ folder."""
    env = os.environ.get("PIX2COLOR_MODELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


def available_models() -> list[str]:
    """Names of the shipped models (folders of models_dir() that hold weights)."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / WEIGHTS_FILE).is_file())


def _architecture(G: nn.Module) -> str:
    for name, cls in ARCHITECTURES.items():
        if type(G) is cls:
            return name
    raise TypeError(f"unknown generator class {type(G).__name__}; add it to ARCHITECTURES")


def save_pretrained(
    G: nn.Module, folder: str | Path, *, metadata: dict[str, Any] | None = None, half: bool = False
) -> Path:
    """Write G's weights (fp32, or fp16 with `half`) and config into `folder`, atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    config = {"architecture": _architecture(G), "config": G.config, "metadata": metadata or {}}
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, folder / CONFIG_FILE)
    return folder


def resolve(name_or_path: str | Path) -> Path:
    """A shipped model name, a model folder, a .safetensors file or a checkpoint -> its path."""
    p = Path(name_or_path)
    if p.exists():
        return p
    candidate = models_dir() / str(name_or_path)
    if (candidate / WEIGHTS_FILE).is_file():
        return candidate
    names = ", ".join(available_models()) or "none"
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} not found: it is neither a path nor a shipped model "
        f"(shipped: {names}); pass a model folder, a .safetensors file, a training checkpoint "
        "or an .onnx export"
    )


def load_generator(name_or_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a generator in eval mode -> (G, info) where info is the config.json contents.

    An `.onnx` path gives an OnnxGenerator (onnxruntime), called like the torch module.
    """
    path = resolve(name_or_path)
    if path.suffix == ".onnx":
        from pix2color.models.onnx_generator import load_onnx  # onnxruntime only when asked

        return load_onnx(path)
    if path.suffix == ".pt":
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model_cfg = ckpt["generator_config"]
            info = {
                # checkpoints written before `generator_arch` existed are all U-Nets
                "architecture": ckpt.get("generator_arch", "unet"),
                "config": model_cfg,
                "metadata": {"checkpoint": str(path)},
            }
            state = ckpt["G"]
        except (KeyError, TypeError):
            raise ModelNotFoundError(f"{path}: not a pix2color training checkpoint") from None
    else:
        folder = path if path.is_dir() else path.parent
        weights = path if path.is_file() else folder / WEIGHTS_FILE
        config_file = folder / CONFIG_FILE
        if not weights.is_file() or not config_file.is_file():
            raise ModelNotFoundError(
                f"{path}: a model folder needs {WEIGHTS_FILE} and {CONFIG_FILE} side by side"
            )
        info = json.loads(config_file.read_text())
        state = load_file(str(weights))
    arch = info.get("architecture", "unet")
    if arch not in ARCHITECTURES:
        raise ModelNotFoundError(
            f"{path}: unknown architecture {arch!r}; this pix2color knows {sorted(ARCHITECTURES)}"
        )
    config = dict(info["config"])
    if "pretrained" in config:  # the trained weights replace ImageNet's: never read that file
        config["pretrained"] = False
    G = ARCHITECTURES[arch](**config)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    G.eval()
    return G, info
