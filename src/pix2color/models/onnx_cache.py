"""The onnxruntime backend of a torch generator: exported once, checked, kept in a cache.

On a CPU the same network runs 1.7x faster in onnxruntime than in torch (bench/bench_onnx.py).
`fast_generator(G)` gives the ONNX twin of G when onnxruntime (and the `onnx` package, for the
export) are installed and the twin computes the same colour; otherwise G itself, with the
reason. "The same" is checked once, when the twin is made: on random inputs of several shapes
its ab may differ from G's by at most CHECK_TOLERANCE (0.11 Lab units; 8-bit RGB then stays
within 1 level). A twin that fails the check is remembered as failed and never used.

The cache is a folder of `<key>.onnx` files ($PIX2COLOR_CACHE/onnx, else
~/.cache/pix2color/onnx): the key hashes the architecture, the constructor config (the colour
setting included), every weight, and the torch, onnx and opset versions, so a changed model or
setting gets its own file and a stale one is never used.

Finding that key needs the torch model (its weights). So that a process whose network runs in
onnxruntime need not load torch at all (it takes longer than the colouring of a photo), each
twin made from a model folder also gets an index entry `<file key>.json`: the file key hashes
the folder's config.json and weights files as they are on disk, the colour setting asked for,
and the torch, onnx and opset versions; the entry names the twin and says what the Colorizer
needs to know without the torch model (its info, its colour setting's kind, whether it reads
colour points itself). `cached_twin` looks a model folder up there, torch-free.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pix2color.errors import UsageError
from pix2color.files import write_atomic
from pix2color.models.io import CONFIG_FILE, WEIGHTS_FILE
from pix2color.models.onnx_generator import DEFAULT_OPSET, OnnxGenerator

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

# the check when a twin is made: small (it runs on a user's first call), odd sides included so
# that the runtime's padding and cropping are checked too (`pix2color export` checks bigger)
TWIN_CHECK_SHAPES = ((1, 1, 64, 96), (2, 1, 48, 48), (1, 1, 37, 53))

BACKENDS = ("auto", "onnx", "torch")  # Colorizer's `backend`; the CLI's --backend


class BackendUnavailable(UsageError):
    """The onnxruntime backend cannot be used for this model; the message says why."""


def cache_dir() -> Path:
    root = os.environ.get("PIX2COLOR_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pix2color") / "onnx"


def model_key(G: nn.Module, opset: int = DEFAULT_OPSET) -> str:
    """A hash of everything the exported file depends on."""
    import onnx
    import torch

    h = hashlib.sha256()
    h.update(json.dumps([G.architecture, G.config, torch.__version__, onnx.__version__, opset],
                        sort_keys=True, default=str).encode())  # fmt: skip
    for name, t in G.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def _missing() -> str | None:
    for package in ("onnxruntime", "onnx"):
        try:
            __import__(package)
        except ImportError:
            return f"{package} is not installed (pip install -r requirements.txt)"
    return None


def onnx_twin(G: nn.Module, folder: Path | None = None) -> OnnxGenerator:
    """G's checked ONNX twin from the cache, made (exported and checked) on first use.

    Raises BackendUnavailable with the reason when there cannot be one.
    """
    why = _missing()
    if why:
        raise BackendUnavailable(why)
    if not isinstance(getattr(G, "factor", None), int) or not hasattr(G, "architecture"):
        raise BackendUnavailable(f"{type(G).__name__} cannot be exported")
    folder = folder or cache_dir()
    key = model_key(G)
    path, failed = folder / f"{key}.onnx", folder / f"{key}.failed"
    if failed.is_file():
        raise BackendUnavailable(failed.read_text(encoding="utf-8").strip())
    if path.is_file():
        try:
            return OnnxGenerator(path)
        except Exception as e:  # a damaged cache file: made again below
            log.warning("ONNX cache %s unusable (%s); exporting again", path, e)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BackendUnavailable(f"cannot write the ONNX cache {folder}: {e.strerror}") from None
    from pix2color.models.onnx_export import CHECK_TOLERANCE, export_onnx, max_ab_difference

    log.info("preparing the onnxruntime version of this model (once; cached in %s)", folder)
    tmp = folder / f"{key}.{os.getpid()}.tmp"
    try:
        export_onnx(G.eval(), tmp)
        twin = OnnxGenerator(tmp)
        diff = max_ab_difference(G, twin, TWIN_CHECK_SHAPES)
        if not diff <= CHECK_TOLERANCE:  # `not <=` also catches a NaN
            why = (
                f"its ONNX export differs from torch by {diff:.2g} in ab (more than "
                f"{CHECK_TOLERANCE:g}): torch is used"
            )
            failed.write_text(why + "\n", encoding="utf-8")
            raise BackendUnavailable(why)
        os.replace(tmp, path)
    except BackendUnavailable:
        raise
    except Exception as e:  # an exporter or runtime error: torch still works
        raise BackendUnavailable(f"ONNX export failed ({type(e).__name__}: {e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return OnnxGenerator(path)


def check_backend(backend: str) -> None:
    """Refuse a backend name that is not one of BACKENDS."""
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")


def fast_generator(G: nn.Module, backend: str = "auto") -> tuple[nn.Module | OnnxGenerator, str]:
    """The network to run for `backend` -> (network, "onnx" or "torch: <why>").

    "torch": G. "onnx": its twin, or BackendUnavailable. "auto": the twin where there can be
    one, else G with the reason.
    """
    check_backend(backend)
    if backend == "torch" or isinstance(G, OnnxGenerator):
        return G, "onnx" if isinstance(G, OnnxGenerator) else "torch"
    try:
        return onnx_twin(G), "onnx"
    except BackendUnavailable as e:
        if backend == "onnx":
            raise
        log.info("using torch: %s", e)
        return G, f"torch ({e})"


def _model_files(path: Path) -> tuple[Path, Path] | None:
    """A model folder's (config.json, weights) or a .safetensors file's; None for other paths."""
    folder, weights = (path, path / WEIGHTS_FILE) if path.is_dir() else (path.parent, path)
    if weights.suffix != ".safetensors" or not weights.is_file():
        return None
    config = folder / CONFIG_FILE
    return (config, weights) if config.is_file() else None


def file_key(path: Path, settings: dict[str, Any]) -> str | None:
    """The index key of a model folder or .safetensors file with these colour settings, from its
    files' bytes (torch-free); None where the path is not such a model."""
    files = _model_files(path)
    if files is None:
        return None
    h = hashlib.sha256()
    versions = []
    for package in ("torch", "onnx", "onnxruntime"):
        try:
            versions.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            return None
    h.update(json.dumps([versions, DEFAULT_OPSET, settings], sort_keys=True).encode())
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:32]


def cached_twin(
    path: Path, settings: dict[str, Any], *, threads: int | None = None
) -> tuple[OnnxGenerator, dict[str, Any]] | None:
    """The checked twin of a model folder with these settings and its index entry, if both are
    in the cache; else None (the caller loads the torch model and makes one)."""
    key = file_key(path, settings)
    if key is None:
        return None
    entry_file = cache_dir() / f"{key}.json"
    try:
        entry = json.loads(entry_file.read_text(encoding="utf-8"))
        return OnnxGenerator(cache_dir() / entry["onnx"], threads=threads), entry
    except (OSError, ValueError, KeyError, TypeError) as e:
        if entry_file.exists():
            log.warning("ONNX cache index %s unusable (%s); made again", entry_file, e)
        return None
    except Exception as e:  # a damaged .onnx file: the slow path makes it again
        log.warning("ONNX cache %s unusable (%s); exporting again", entry_file, e)
        return None


def remember_twin(path: Path, settings: dict[str, Any], twin: OnnxGenerator, entry: dict) -> None:
    """Write the index entry for `cached_twin` (best effort: a read-only cache only costs time)."""
    key = file_key(path, settings)
    if key is None:
        return
    try:
        write_atomic(cache_dir() / f"{key}.json", json.dumps({**entry, "onnx": twin.path.name}))
    except OSError as e:
        log.info("cannot write the ONNX cache index (%s)", e)
