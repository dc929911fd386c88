"""Folders as a small pipeline: a reader thread, the network here, a writer thread.

A reader thread decodes photos (and their working-size L, and checks their guidance) at most
`ahead` photos ahead of the network; the network runs batches in the calling thread (spine
step 2); a writer thread applies each photo's guidance, joins it at full size (steps 3-4) and
saves it, with at most `ahead` results waiting. Decoding, network and encoding overlap (Pillow
and numpy release the GIL) in bounded memory: about `max_pixels` pixels of decoded photos (or
one photo) between the reader and the writer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.guide.points import PointsError
from pix2color.inference import spine
from pix2color.inference.join import small_L
from pix2color.inference.spine import Colorizer, Depth, Guidance
from pix2color.photo import ImageError, Photo, read_photo

# Pixels of decoded photos a pipeline holds at once (reader, queues, network, writer): a folder
# of 1 MP photos is limited by its queues' lengths, one of 25 MP scans by this; a photo bigger
# than this goes through alone.
PIXELS_IN_FLIGHT = 48_000_000


class FolderPipeline:
    """The threads and queues of Colorizer.colorize_folder: read -> network -> write."""

    def __init__(
        self,
        colorizer: Colorizer,
        save: Callable[[Image.Image | np.ndarray, Photo], Path],
        *,
        depth: Depth,
        ahead: int,
        max_pixels: int,
        guidance: Callable[[Photo], Guidance],
    ) -> None:
        self.c, self.save, self.depth, self.max_pixels = colorizer, save, depth, max_pixels
        self.guidance_of = guidance  # a photo's checked guidance (PointsError: that photo fails)
        self.guidance: dict[int, Guidance] = {}  # id(photo) -> its guidance, reader to writer
        self.todo: queue.Queue = queue.Queue(maxsize=max(1, ahead))  # decoded photos
        self.ready: queue.Queue = queue.Queue(maxsize=max(1, ahead))  # predicted, to save
        self.done: queue.Queue = queue.Queue()  # (path, written, error): small, drained often
        self.stop = threading.Event()
        self.failed: list[BaseException] = []
        self.read_all, self.predicting = threading.Event(), threading.Event()
        self.in_flight = 0  # pixels decoded and not yet saved
        self.room, self.starved = threading.Condition(), threading.Event()

    # -------------------------------------------------------------- bounded memory
    def take(self, n: int) -> None:
        """Wait until n more pixels fit (a lone photo always does)."""
        with self.room:
            while (
                self.in_flight and self.in_flight + n > self.max_pixels and not self.stop.is_set()
            ):
                self.starved.set()  # the network should colour what it has: the writer frees
                self.room.wait(0.1)
            self.starved.clear()
            self.in_flight += n

    def give(self, n: int) -> None:
        with self.room:
            self.in_flight -= n
            self.room.notify_all()

    def put(self, q: queue.Queue, item) -> bool:
        """A put that gives up when the pipeline stops."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def join_workers(self) -> int:
        """One CPU is the network's while it has work; else all of them."""
        idle = self.read_all.is_set() and self.todo.empty() and not self.predicting.is_set()
        return self.c.workers if idle else max(1, self.c.workers - 1)

    # -------------------------------------------------------------- the two threads
    def read(self, paths: Iterable[Path]) -> None:
        try:
            for path in paths:
                if self.stop.is_set():
                    return
                try:
                    photo = read_photo(path)
                    self.guidance[id(photo)] = self.guidance_of(photo)
                except (ImageError, PointsError) as e:
                    self.done.put((Path(path), None, str(e)))
                    continue
                self.take(photo.size[0] * photo.size[1])
                if not self.put(self.todo, (photo, small_L(photo, self.c.size))):
                    return
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            self.failed.append(e)
        finally:
            self.read_all.set()
            self.put(self.todo, None)

    def write(self) -> None:
        try:
            while True:
                try:
                    item = self.ready.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if item is None:
                    return
                photo, predicted = item
                guidance = self.guidance.pop(id(photo), spine.NO_GUIDANCE)
                ab = spine.guide(self.c, photo, predicted, guidance)
                bits = spine.output_bits(photo, self.depth)
                img = spine.finish(self.c, photo, ab, predicted.L_small, bits, self.join_workers())
                try:
                    self.done.put((photo.path, self.save(img, photo), None))
                except ImageError as e:
                    self.done.put((photo.path, None, str(e)))
                except OSError as e:
                    self.done.put((photo.path, None, f"{photo.path}: cannot write ({e})"))
                n = photo.size[0] * photo.size[1]
                del img, photo, item
                self.give(n)
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            self.failed.append(e)
            self.stop.set()

    def finished(self) -> Iterator[tuple[Path, Path | None, str | None]]:
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                return

    # -------------------------------------------------------------- the network, here
    def run(self, paths: Iterable[Path], batch_size: int):
        reader = threading.Thread(target=self.read, args=(paths,), name="pix2color-read",
                                  daemon=True)  # fmt: skip
        writer = threading.Thread(target=self.write, name="pix2color-write", daemon=True)
        reader.start()
        writer.start()
        try:
            yield from self.network(batch_size)
            if self.failed:
                self.stop.set()  # the writer ends too: what is left is not saved
            else:
                self.put(self.ready, None)
            while writer.is_alive():
                writer.join(timeout=0.1)
                yield from self.finished()
            yield from self.finished()
            if self.failed:
                raise self.failed[0]
        finally:
            self.stop.set()
            reader.join()
            writer.join()

    def network(self, batch_size: int):
        """Batches from the reader through the network to the writer, until the reader ends."""
        batch: list[tuple[Photo, np.ndarray]] = []
        while not self.failed:
            try:
                item = self.todo.get(timeout=0.1)
            except queue.Empty:
                if not (batch and self.starved.is_set()):
                    yield from self.finished()
                    continue  # the reader is still decoding (or the writer failed)
                item = False  # big photos: colour a short batch to free their pixels
            if item:
                batch.append(item)
            if batch and (not item or len(batch) >= batch_size):
                photos, smalls = zip(*batch, strict=True)
                self.predicting.set()
                try:
                    predictions = spine.predict(self.c, list(smalls))
                finally:
                    self.predicting.clear()
                for photo, predicted in zip(photos, predictions, strict=True):
                    if not self.put(self.ready, (photo, predicted)):
                        break
                batch = []
            yield from self.finished()
            if item is None:
                break
