"""The models a server process holds, loaded once, and the inference slots they share.

Colouring takes about 100 MB of memory per megapixel of photo for a short while. The slots (a
semaphore) bound how many photos are decoded and coloured at once, so memory stays bounded
whatever the load: a request that finds every slot taken waits a little, then is answered
"busy" (503) instead of piling up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from pix2color.data.images import Photo
from pix2color.errors import UsageError
from pix2color.inference import Colorizer

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """Every inference slot stayed taken for the whole wait."""


def model_name(spec: str) -> tuple[str, str]:
    """A `--models` item -> (name, name or path): `name=path`, a shipped name, or a path.

    A path is named after its folder, or the folder's parent when that is called `model`:
    `runs/default/model` and `runs/default/best.pt` are both `default`.
    """
    if "=" in spec:
        name, _, target = spec.partition("=")
        return name.strip(), target.strip()
    p = Path(spec)
    if not p.exists():
        return spec, spec  # a shipped model's name
    p = p.resolve()
    if p.is_file():  # model.safetensors or a checkpoint: name it after its folder
        p = p.parent
    if p.name == "model":
        p = p.parent
    return p.name, spec


def load_colorizers(specs: list[str], size: int) -> dict[str, Colorizer]:
    """Load each model once; names must be distinct (use name=path to tell two apart)."""
    colorizers: dict[str, Colorizer] = {}
    for spec in specs:
        name, target = model_name(spec)
        if name in colorizers:
            raise UsageError(
                f"two models are both called {name!r}; name them: --models a={target} b=..."
            )
        colorizers[name] = Colorizer.from_pretrained(target, size=size)
        log.info("loaded model %s from %s", name, target)
    return colorizers


class Engine:
    """Named colorizers plus `slots` inference slots; `wait` seconds before answering busy."""

    def __init__(self, colorizers: dict[str, Colorizer], *, slots: int, wait: float) -> None:
        if not colorizers:
            raise UsageError("the web service needs at least one model")
        if slots < 1:
            raise UsageError(f"inference slots must be 1 or more, got {slots}")
        self.colorizers = dict(colorizers)
        self.slots = threading.BoundedSemaphore(slots)
        self.n_slots, self.wait = slots, wait

    @property
    def names(self) -> list[str]:
        return list(self.colorizers)

    def default(self, preferred: str | None = None) -> str:
        """The model used when a request names none: `preferred`, else `default`, else first."""
        for name in (preferred, "default"):
            if name and name in self.colorizers:
                return name
        return self.names[0]

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one inference slot for the block, or raise Busy after `wait` seconds."""
        if not self.slots.acquire(timeout=self.wait):
            raise Busy(
                f"the server is busy colouring other photos ({self.n_slots} at a time); "
                "try again in a few seconds"
            )
        try:
            yield
        finally:
            self.slots.release()

    def colorize(self, model: str, photo: Photo, size: int) -> Image.Image:
        """Colour one photo with one model at a working size (call inside `slot()`)."""
        base = self.colorizers[model]
        # the same network (torch or its onnxruntime twin); only the working size differs
        return base.at_size(size).colorize_photo(photo)
