"""Model folders and where installed models are found.

A model folder holds `model.safetensors` and `config.json`: `{"architecture", "config",
"metadata"}`, the same generator record (models/base.py) that training checkpoints keep under
"generator", so both rebuild their own network. `load_generator` also takes a training
checkpoint (`best.pt` / `last.pt`) and an ONNX export (`.onnx`, run by onnxruntime).

Installed models are found by name in these folders, first match wins (`model_dirs()`):
1. each folder of $PIX2COLOR_MODELS (separated by `os.pathsep`), for your own collections;
2. the user folder `$XDG_DATA_HOME/pix2color/models` (default `~/.local/share/pix2color/models`);
3. `models/` of the source checkout, when pix2color runs from one (the other shipped models);
4. the models inside the installed package (`pix2color/bundled/`: the `default` model).

A model that only suggests colours (a colour-class model: suggest.py) lives one folder down, in
`suggest/<name>` of those folders, so that it is never offered for colouring
(`suggestion_model()`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pix2color.errors import ModelNotFoundError
from pix2color.files import replacing, write_atomic

if TYPE_CHECKING:  # torch is imported where a network is built: finding models needs none
    import torch

    from pix2color.models.base import Generator


def architectures() -> dict[str, type[Generator]]:
    """Every generator class by its `architecture` name (the record's key)."""
    from pix2color.models.encoder_unet import HintUNet, MobileNetClassUNet, MobileNetUNet
    from pix2color.models.unet import UNetGenerator

    return {c.architecture: c for c in (UNetGenerator, MobileNetUNet, MobileNetClassUNet, HintUNet)}


WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "MODEL_CARD.md"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "bundled"
_CHECKOUT_DIR = Path(__file__).resolve().parents[3] / "models"


def user_models_dir() -> Path:
    """The per-user model folder: $XDG_DATA_HOME/pix2color/models (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pix2color" / "models"


def model_dirs() -> list[Path]:
    """The folders searched for installed models, in order (see the module docstring)."""
    env = [Path(p) for p in os.environ.get("PIX2COLOR_MODELS", "").split(os.pathsep) if p]
    checkout = [_CHECKOUT_DIR] if (_CHECKOUT_DIR.parent / "pyproject.toml").is_file() else []
    return [*env, user_models_dir(), *checkout, BUNDLED_DIR]


def installed_models() -> dict[str, Path]:
    """Every installed model: name -> its folder (the first folder of model_dirs() wins)."""
    found: dict[str, Path] = {}
    for root in model_dirs():
        if root.is_dir():
            for p in sorted(root.iterdir()):
                if (p / WEIGHTS_FILE).is_file():
                    found.setdefault(p.name, p)
    return found


def available_models() -> list[str]:
    """Names of the installed models, sorted."""
    return sorted(installed_models())


SUGGEST_DIR, SUGGEST_MODEL = "suggest", "colour-classes"


def suggestion_model(name: str = SUGGEST_MODEL) -> Path | None:
    """The folder of the installed suggestions model `name` (`suggest/<name>` in the first of
    model_dirs() that has it), or None."""
    for root in model_dirs():
        if (root / SUGGEST_DIR / name / WEIGHTS_FILE).is_file():
            return root / SUGGEST_DIR / name
    return None


def save_pretrained(
    G: Generator, folder: str | Path, *, metadata: dict[str, Any] | None = None, half: bool = False
) -> Path:
    """Write G's weights (fp32, or fp16 with `half`) and config into `folder`, atomically."""
    from safetensors.torch import save_file

    from pix2color.models.base import generator_record

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with replacing(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    config = {**generator_record(G), "metadata": metadata or {}}
    write_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return folder


def resolve(name_or_path: str | Path) -> Path:
    """An installed model's name, a model folder, a .safetensors file, a checkpoint or an
    .onnx file -> its path."""
    p = Path(name_or_path)
    if p.exists():
        return p
    found = installed_models().get(str(name_or_path))
    if found is not None:
        return found
    names = ", ".join(available_models()) or "none"
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} not found: it is neither a path nor a shipped model or "
        f"one in the model folders (found: {names}; `pix2color models` lists them and where "
        "they are); pass a model folder, a .safetensors file, a training checkpoint or an .onnx "
        "export"
    )


def build_generator(record: dict[str, Any], where: str | Path) -> Generator:
    """A fresh generator from a record {"architecture", "config"}; `where` names it in errors."""
    known = architectures()
    arch, config = record.get("architecture", "unet"), dict(record["config"])
    if arch == "mobilenet_unet" and config.pop("head", "regression") == "classes":
        arch = "mobilenet_classes"  # models saved before the class head had its own class
    if arch not in known:
        raise ModelNotFoundError(
            f"{where}: unknown architecture {arch!r}; this pix2color knows {sorted(known)}"
        )
    config.pop("pretrained", None)  # trained weights replace ImageNet's: never read that file
    return known[arch](**config)


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    try:
        if "generator" in ckpt:
            record = ckpt["generator"]
        else:  # checkpoints written before the generator record (0.1: the record in two keys)
            record = {
                "architecture": ckpt.get("generator_arch", "unet"),
                "config": ckpt["generator_config"],
            }
        return {**record, "metadata": {"checkpoint": str(path)}}, ckpt["G"]
    except (KeyError, TypeError):
        raise ModelNotFoundError(f"{path}: not a pix2color training checkpoint") from None


def load_generator(name_or_path: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a generator in eval mode -> (G, info), info shaped like config.json.

    An `.onnx` path gives an OnnxGenerator (onnxruntime), called like the torch module.
    """
    path = resolve(name_or_path)
    if path.suffix == ".onnx":
        from pix2color.models.onnx_generator import load_onnx  # onnxruntime only when asked

        return load_onnx(path)
    if path.suffix == ".pt":
        info, state = _read_checkpoint(path)
    else:
        folder = path if path.is_dir() else path.parent
        weights = path if path.is_file() else folder / WEIGHTS_FILE
        config_file = folder / CONFIG_FILE
        if not weights.is_file() or not config_file.is_file():
            raise ModelNotFoundError(
                f"{path}: a model folder needs {WEIGHTS_FILE} and {CONFIG_FILE} side by side"
            )
        from safetensors.torch import load_file

        info = json.loads(config_file.read_text())
        state = load_file(str(weights))
    G = build_generator(info, path)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    G.eval()
    return G, info


def stored_half(path: Path) -> bool:
    """Whether a model folder's (or .safetensors file's) weights are stored in fp16."""
    from safetensors import safe_open

    weights = path / WEIGHTS_FILE if path.is_dir() else path
    if weights.suffix != ".safetensors":
        return False
    with safe_open(str(weights), framework="pt") as f:
        return any(f.get_slice(k).get_dtype() == "F16" for k in f.keys())
