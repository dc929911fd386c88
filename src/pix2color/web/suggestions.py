"""Colour suggestions on the web: the likely colours at a spot where a person drops a point.

The suggestions model (a colour-class model, `models.io.suggestion_model()`: never one of the
models that colour) is loaded on the first request that needs it. A photo's distribution over
the colour bins is computed once, at the server's working size, in an inference slot, and kept
beside the upload as `<upload>-classes.npz` (bin probabilities (gh, gw, Q) in fp16 and the
working-size L averaged to the same grid: about 2 MB at 256 px); it expires with the upload
(jobs.derived_names). Each request reads that file and answers with suggest.likely_colours, so
a request holds no model output in memory once it has answered.

The spot comes as query or form fields `x` and `y`, whole pixels of the photo as it is shown
(upright), like colour points; a bad value is a WebError 400 naming the field.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pix2color.files import replacing
from pix2color.guide.suggest import Suggestion, class_distribution, likely_colors
from pix2color.inference.join import small_L
from pix2color.photo import Photo
from pix2color.web.errors import WebError

log = logging.getLogger(__name__)

K_DEFAULT, K_MAX = 3, 8


def classes_name(name: str) -> str:
    """`<id>.upload` -> `<id>-classes.npz`: an upload's kept colour distribution."""
    return f"{name.rsplit('.', 1)[0]}-classes.npz"


class Suggester:
    """The suggestions model (a model folder, or a loaded colour-class network) and the
    working size its distributions are computed at."""

    def __init__(self, model: str | Path | torch.nn.Module, size: int, name: str | None = None):
        self._source, self.size = model, size
        if isinstance(model, torch.nn.Module):
            self._G: torch.nn.Module | None = model.eval()
            self.name = name or type(model).__name__
        else:
            self._G = None
            self.name = name or Path(model).name
        self._lock = threading.Lock()

    def network(self) -> torch.nn.Module:
        """The colour-class network, loaded on first use (once, whatever the threads)."""
        with self._lock:
            if self._G is None:
                from pix2color.models.io import load_generator

                self._G, _ = load_generator(self._source)
                log.info("loaded the suggestions model from %s", self._source)
            return self._G

    def distribution(self, photo: Photo) -> tuple[np.ndarray, np.ndarray]:
        """A decoded photo -> (bin probabilities (gh, gw, Q) float16, L (gh, gw) float32 on the
        same grid, a quarter of the working size); call inside an inference slot."""
        G = self.network()
        L_small = torch.from_numpy(small_L(photo, self.size))  # (1, h, w) in [0, 100]
        probs = class_distribution(G, L_small)  # (gh, gw, Q)
        L_grid = F.avg_pool2d(L_small[None], 4, ceil_mode=True)[0, 0]  # (gh, gw)
        return probs.half().numpy(), L_grid[: probs.shape[0], : probs.shape[1]].numpy()

    def bins(self) -> torch.Tensor:
        """(Q, 2) the model's bin centres in ab units."""
        return self.network().bins.float()


def save_distribution(path: Path, probs: np.ndarray, L: np.ndarray) -> None:
    """Write a distribution file whole or not at all (a temporary file, then a rename)."""
    with replacing(path, suffix=f".{secrets.token_hex(4)}.npz") as tmp:  # np.savez keeps .npz
        np.savez(tmp, probs=probs, L=L)


def load_distribution(path: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A kept distribution -> (probs (gh, gw, Q), L (gh, gw)); None if absent or unreadable."""
    try:
        with np.load(path) as f:
            return torch.from_numpy(f["probs"]), torch.from_numpy(f["L"])
    except (OSError, ValueError, KeyError):
        return None


def _whole(values: Mapping[str, Any], field: str, lo: int, hi: int, what: str) -> int:
    raw = values.get(field)
    if raw is None or str(raw).strip() == "":
        raise WebError(400, f"{field}: missing; send {field}={lo} to {hi} ({what})")
    text = str(raw).strip()[:40]
    try:
        value = int(text)
    except ValueError:
        raise WebError(
            400, f"{field}: {text!r} is not a whole number; send {field}={lo} to {hi} ({what})"
        ) from None
    if not lo <= value <= hi:
        raise WebError(400, f"{field}: {value} is outside {lo} to {hi} ({what})")
    return value


def parse_spot(values: Mapping[str, Any], size: tuple[int, int]) -> tuple[int, int, int]:
    """The request's x, y (in a photo of size (W, H)) and k (how many colours, default 3)."""
    W, H = size
    x = _whole(values, "x", 0, W - 1, f"pixels from the left of the {W}x{H} photo")
    y = _whole(values, "y", 0, H - 1, f"pixels from the top of the {W}x{H} photo")
    k = K_DEFAULT
    if values.get("k") not in (None, ""):
        k = _whole(values, "k", 1, K_MAX, "how many colours to suggest")
    return x, y, k


def answer(
    probs: torch.Tensor,
    L: torch.Tensor,
    bins: torch.Tensor,
    size: tuple[int, int],
    x: int,
    y: int,
    k: int,
) -> list[Suggestion]:
    """The likely colours at (x, y) from a kept distribution, at the spot's own lightness."""
    W, H = size
    gh, gw = L.shape
    cy, cx = min(gh - 1, (y * gh) // H), min(gw - 1, (x * gw) // W)  # the spot's cell
    return likely_colors(probs, bins, size, x, y, float(L[cy, cx]), k=k)


def as_json(suggestions: list[Suggestion]) -> list[dict[str, Any]]:
    """[Suggestion] -> the answer's list: colour '#rrggbb', ab, probability (0-1)."""
    return [
        dict(color=s.hex, ab=list(s.ab), probability=s.probability) for s in suggestions
    ]  # fmt: skip
