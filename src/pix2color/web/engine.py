"""The models a server process holds, loaded once, and the inference slots they share.

Colouring takes memory and CPU in proportion to a photo's pixels for a short while, and so
does encoding a big result as JPEG or WebP. The slots (a semaphore) bound how many of these
heavy tasks (decode + colour + write, an API answer's encoding, a download's re-encoding) run
at once, so memory and CPU stay bounded whatever the load: a request that finds every slot
taken waits a little, then is answered "busy" (503) instead of piling up.

The queue bounds how many requests may wait for a slot. Each waiting request holds one of the
server's request threads; with at most `slots + queue` of them in heavy work, the rest of the
threads stay free for light requests (/healthz, pages, ratings), which then never wait behind
colouring (`pix2color serve` gives waitress slots + queue + 4 threads). A request that finds the
queue full is answered busy at once.

After heavy work, `trim_memory` hands freed heap memory back to the operating system (glibc's
malloc_trim), so that the process returns near its idle size after a burst of big photos.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from pix2color.errors import UsageError
from pix2color.guide.points import Point
from pix2color.guide.reference import Palette
from pix2color.inference import spine
from pix2color.inference.colorizer import Colorizer
from pix2color.photo import Photo

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


def _libc(name: str):
    """A glibc function, or None (musl, macOS: nothing to call)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc("malloc_trim")
if _MALLOC_TRIM is not None:
    _MALLOC_TRIM.argtypes, _MALLOC_TRIM.restype = [ctypes.c_size_t], ctypes.c_int
M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int) -> bool:
    """At most `arenas` glibc malloc arenas (call before the request threads start).

    glibc gives threads up to 8 arenas per CPU; each keeps freed memory of its own, so a
    server with many request threads grows after bursts. False where there is no mallopt.
    """
    mallopt = _libc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))


BIG_PIXELS = 2_000_000  # after heavy work on a photo this big, give freed memory back


def trim_memory() -> bool:
    """Give the heap's free memory back to the OS (glibc); False where there is no malloc_trim."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class FairSlots:
    """A semaphore that hands a freed slot to the request that has waited longest (FIFO).

    threading.Semaphore wakes any waiter, so under load some wait far longer than others;
    here the p95 wait stays near the median.
    """

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._lock:
            if turn in self._waiters:  # gave up before its turn came
                self._waiters.remove(turn)
                return False
        return True  # its turn came while it was giving up: the slot is its own

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot passes straight to the next
            else:
                self._free += 1


class Engine:
    """Named colorizers plus `slots` inference slots; `wait` seconds before answering busy.

    queue: how many requests may wait for a slot (None: any number); one more is busy at once.
    """

    def __init__(
        self,
        colorizers: dict[str, Colorizer],
        *,
        slots: int,
        wait: float,
        queue: int | None = None,
    ) -> None:
        if not colorizers:
            raise UsageError("the web service needs at least one model")
        if slots < 1:
            raise UsageError(f"inference slots must be 1 or more, got {slots}")
        if queue is not None and queue < 0:
            raise UsageError(f"the inference queue must be 0 or more, got {queue}")
        self.colorizers = dict(colorizers)
        self.slots = FairSlots(slots)
        self.n_slots, self.wait, self.queue = slots, wait, queue
        self._inside = 0  # requests holding or waiting for a slot
        self._big_since_trim = False
        self._count_lock = threading.Lock()

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
    def slot(self, pixels: int = 0) -> Iterator[None]:
        """Hold one inference slot for the block, or raise Busy (queue full, or after `wait` s).

        pixels: the photo's size; once a big one (BIG_PIXELS) went through, the last request
        to leave trims the heap, so memory goes back to the system after a burst.
        """
        with self._count_lock:
            if self.queue is not None and self._inside >= self.n_slots + self.queue:
                raise Busy(self._busy_message())
            self._inside += 1
            self._big_since_trim |= pixels >= BIG_PIXELS
        try:
            if not self.slots.acquire(timeout=self.wait):
                raise Busy(self._busy_message())
            try:
                yield
            finally:
                self.slots.release()
        finally:
            with self._count_lock:
                self._inside -= 1
                trim = self._inside == 0 and self._big_since_trim
                if trim:
                    self._big_since_trim = False
            if trim:
                trim_memory()

    def _busy_message(self) -> str:
        return (
            f"the server is busy colouring other photos ({self.n_slots} at a time); "
            "try again in a few seconds"
        )

    def predict(self, model: str, photo: Photo, size: int) -> spine.Prediction:
        """The network's working-size colour (spine steps 1-2); in a slot.

        Kept per page result (jobs.py), so that new colour points re-colour the photo without
        the network: propagation and the join only."""
        # the same network (torch or its onnxruntime twin); only the working size differs
        return self.colorizers[model].at_size(size).predict_photos([photo])[0]

    def join(
        self,
        model: str,
        photo: Photo,
        predicted: spine.Prediction,
        points: Sequence[Point] | None = None,
        reference: Palette | None = None,
    ) -> Image.Image:
        """A kept prediction with its guidance (a reference photo's palette, then colour points;
        checked by the request against the photo's size) at the photo's full size, 8-bit
        (spine steps 3-4)."""
        c = self.colorizers[model]
        guidance = spine.Guidance(tuple(points or ()), reference)
        ab = spine.guide(c, photo, predicted, guidance)
        image = spine.finish(c, photo, ab, predicted.L_small, 8)
        assert isinstance(image, Image.Image)
        return image
