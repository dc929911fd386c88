"""What the page and the API both do: colour an upload, record it as a job, re-colour it.

`Service.colorize` is the one way a photo is coloured: the page keeps the files and shows a
card, the API answers with the image and keeps only the rows (so that it can be rated). The
files themselves (names, thumbnails, downloads, expiry) are web/instance_files.py's.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from flask import current_app
from PIL import Image
from werkzeug.datastructures import FileStorage

from pix2color.guide.points import Point, check_points
from pix2color.guide.reference import Palette, ReferencePhotoError, palette_of
from pix2color.inference.spine import Prediction
from pix2color.photo import Photo
from pix2color.web import points as web_points
from pix2color.web.downloads import encode
from pix2color.web.engine import Engine
from pix2color.web.errors import WebError
from pix2color.web.instance_files import DERIVED, InstanceFiles
from pix2color.web.settings import WebSettings
from pix2color.web.store import Store
from pix2color.web.suggestions import (
    Suggester,
    answer,
    as_json,
    classes_name,
    load_distribution,
    parse_spot,
    save_distribution,
)
from pix2color.web.uploads import (
    check_header,
    decode,
    new_id,
    photo_digest,
    save_upload,
    view_image,
)

log = logging.getLogger(__name__)

REFERENCE_FIELD = "reference"  # the form field of the reference photo (page and API)

LABELS = "ABCDEFGH"


@dataclass(frozen=True)
class Output:
    """One model's colouring of a photo."""

    model: str
    image: Image.Image
    seconds: float
    predicted: Prediction | None = None  # the network's working-size colour, kept for points


@dataclass(frozen=True)
class Coloring:
    """An upload coloured by one or more models: the job as the store holds it, the images."""

    job: dict[str, Any]
    outputs: list[Output]
    encoded: bytes | None = None  # the first output in the format asked for (the API)


class Service(InstanceFiles):
    """Colouring, re-colouring and colour suggestions, on the files InstanceFiles keeps."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        settings: WebSettings,
        suggester: Suggester | None = None,
    ) -> None:
        super().__init__(store, engine, settings)
        self.suggester = suggester  # None: no suggestions model, colour suggestions are off

    # ------------------------------------------------------------------ colouring
    def colorize(
        self,
        file: FileStorage | None,
        *,
        size: int,
        models: list[str],
        keep: bool,
        owner: str,
        encode_as: str | None = None,
        points: Sequence[Point] | None = None,
        reference: FileStorage | None = None,
    ) -> Coloring:
        """Check, decode and colour an upload with each model, and record it as a new job.

        keep: keep the upload, a view copy of it and each result as files (the page); else
        every file goes at once and only the rows stay (the API).
        owner: the digest of the sender's secret (security.page_owner, new_api_token): only
        its holder may rate the results or re-run the photo.
        encode_as: also encode the first result in this download format, in the same slot
        (the API's answer: a second wait for a slot would put it at the back of the queue).
        points: colour points (web/points.py) for every model; checked against the upright
        photo's size once it is decoded (a PointsError, answered 400).
        reference: a colour photo whose palette every model's colour takes (reference.py), with
        the photo's checks (format, pixels); only its palette is kept, in the upload's row.
        Refusals name the field: `reference: ...`.
        """
        path, filename = save_upload(self.files, file)
        upload_id = new_id()
        ref = None
        try:
            _, width, height = check_header(path, filename, self.settings.max_pixels)
            ref = self._reference_upload(reference)
            # decoding, colouring and writing hold the slot: together they are the memory
            with self.engine.slot(width * height + (ref[2] if ref else 0)):
                palette = self._reference_palette(*ref[:2]) if ref else None
                photo = decode(path, filename)
                digest = photo_digest(photo)  # who knows which model made its colours
                if points:
                    check_points(points, photo.size, web_points.FIELD)
                points_of = dict.fromkeys(models, points) if points else {}
                outputs = self._color(photo, filename, models, size, points_of, palette)
                view = self._keep_view(upload_id, photo) if keep else None
                results = self._results(outputs, keep, points_of)
                data = encode(outputs[0].image, encode_as) if encode_as else None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            if ref:
                ref[0].unlink(missing_ok=True)  # only its palette is kept
        if not keep:
            path.unlink()
        now = time.time()
        (width, height), fmt = photo.size, photo.format
        self.store.add_upload(
            dict(id=upload_id, filename=filename, stored=path.name if keep else None, view=view,
                 width=width, height=height, format=fmt, source="web" if keep else "api",
                 created_at=now, expires_at=now + self.settings.file_ttl, owner=owner,
                 reference=palette.to_json() if palette else None, photo=digest)
        )  # fmt: skip
        return Coloring(self._add_job(upload_id, results, size), outputs, data)

    def rerun(self, job: dict[str, Any], size: int) -> dict[str, Any]:
        """Colour a kept upload again at another working size -> a new job (new labels); each
        model's colour points go with it (they are in the photo's pixels, at any size)."""
        path = self.files / (job["stored"] or "-")
        if not job["stored"] or not path.is_file():
            raise WebError(404, "this photo has expired; upload it again")
        models = [r["model"] for r in job["results"] if r["model"] in self.engine.colorizers]
        models = models or self.compared_models()  # its models were all taken away: new ones
        points_of = {r["model"]: web_points.loads(r["points"]) for r in job["results"]}
        palette = stored_palette(job)
        with self.engine.slot(job["width"] * job["height"]):
            photo = decode(path, job["filename"])
            outputs = self._color(photo, job["filename"], models, size, points_of, palette)
            results = self._results(outputs, keep=True, points_of=points_of)
        return self._add_job(job["upload_id"], results, size)

    def compared_models(self) -> list[str]:
        """The models a page upload is coloured with: all of them, or a random few."""
        names = self.engine.names
        k = max(1, min(len(names), self.settings.compare_models))
        return secrets.SystemRandom().sample(names, k) if k < len(names) else names

    def _color(
        self,
        photo: Photo,
        filename: str,
        models: list[str],
        size: int,
        points_of: Mapping[str, Sequence[Point]] | None = None,
        palette: Palette | None = None,
    ) -> list[Output]:
        """Colour a decoded photo with each model (with the reference's palette and that
        model's colour points, if any); call inside `engine.slot()` (memory-bound)."""
        outputs = []
        for model in models:
            t = time.perf_counter()
            predicted = self.engine.predict(model, photo, size)
            points = (points_of or {}).get(model)
            img = self.engine.join(model, photo, predicted, points, palette)
            outputs.append(Output(model, img, time.perf_counter() - t, predicted))
        w, h = photo.size
        log.info("coloured %s (%dx%d) at %d with %s", filename, w, h, size, ", ".join(models))
        return outputs

    def _reference_upload(self, file: FileStorage | None) -> tuple[Path, str, int] | None:
        """A request's reference photo, kept under a random name with its header checked as a
        photo's -> (path, its name, pixels); None when the field is absent or left empty."""
        if file is None or (not file.filename and not file.content_length):
            return None
        path, name = save_upload(self.files, file)
        try:
            _, w, h = check_header(path, name, self.settings.max_pixels)
        except WebError as e:
            path.unlink(missing_ok=True)
            raise WebError(e.status, f"{REFERENCE_FIELD}: {e.message}") from None
        return path, name, w * h

    def _reference_palette(self, path: Path, name: str) -> Palette:
        """Decode a checked reference photo -> its palette; a photo without colour is a 400."""
        try:
            return palette_of(view_image(decode(path, name)), name=name)
        except WebError as e:
            raise WebError(e.status, f"{REFERENCE_FIELD}: {e.message}") from None
        except ReferencePhotoError as e:
            raise WebError(400, f"{REFERENCE_FIELD}: {e}") from None

    def _keep_view(self, upload_id: str, photo: Photo) -> str:
        """The page's "before": upright and 8-bit, JPEG unless it has transparency."""
        alpha = photo.alpha is not None
        name = f"{upload_id}-view.{'png' if alpha else 'jpg'}"
        view = view_image(photo)
        view.save(self.files / name, **({} if alpha else {"quality": 90}))
        self._save_thumb(view, name)
        return name

    def _results(
        self,
        outputs: list[Output],
        keep: bool,
        points_of: Mapping[str, Sequence[Point]] | None = None,
    ) -> list[dict[str, Any]]:
        """Result rows labelled A, B, ... in random order; with keep, each written as a PNG
        (with its working-size colour beside it, for re-colouring with colour points)."""
        order = list(range(len(outputs)))
        secrets.SystemRandom().shuffle(order)  # neutral labels in a random order
        results = []
        for label, i in zip(LABELS, order, strict=False):
            out, rid = outputs[i], new_id()
            row = dict(id=rid, model=out.model, label=label, seconds=out.seconds)
            row["points"] = web_points.dumps((points_of or {}).get(out.model))
            if keep:
                out.image.save(self.files / f"{rid}.png", format="PNG", compress_level=3)
                self._save_thumb(out.image, f"{rid}.png")
                if out.predicted is not None:
                    self._save_color(f"{rid}.png", out.predicted)
                row["file"] = f"{rid}.png"
            results.append(row)
        return results

    def _add_job(self, upload_id: str, results: list[dict], size: int) -> dict[str, Any]:
        job = dict(id=new_id(), upload_id=upload_id, size=size, created_at=time.time())
        self.store.add_job(job, results)
        found = self.store.get_job(job["id"])
        assert found is not None, "a job just written must be readable"
        return found

    # ------------------------------------------------------------------ colour points
    def recolor(
        self, job: dict[str, Any], result: dict[str, Any], points: Sequence[Point] | None
    ) -> dict[str, Any]:
        """Colour a page result again with new colour points (none: the automatic colour).

        The network's working-size colour is kept per result, so this is the propagation and
        the full-size join only (the network runs again only when that file is missing). The
        result's PNG, thumbnail and points are replaced; its JPEG/WebP downloads are dropped
        and made again when asked for. In an inference slot, like colouring. -> timings (s).
        """
        path = self.files / (job["stored"] or "-")
        if not job["stored"] or not result["file"] or not path.is_file():
            raise WebError(404, "this photo has expired; upload it again")
        if result["model"] not in self.engine.colorizers:
            raise WebError(409, "this result's model is not on this server any more; re-run it")
        if points:  # the upload's row has the upright photo's size: refused before any slot
            check_points(points, (job["width"], job["height"]), web_points.FIELD)
        palette = stored_palette(job)
        name = result["file"]
        stem = name.rsplit(".", 1)[0]
        # the download encodings' locks, in one order (encoded() takes one, then a slot)
        locks = sorted(
            {hash(f"{stem}.{ext}") % len(self._encode_locks) for ext in DERIVED}
        )  # fmt: skip
        for i in locks:
            self._encode_locks[i].acquire()
        try:
            t0 = time.perf_counter()
            with self.engine.slot(job["width"] * job["height"]):
                photo = decode(path, job["filename"])
                t1 = time.perf_counter()
                kept = self._load_color(name)
                if kept is None:
                    kept = self.engine.predict(result["model"], photo, job["size"])
                    self._save_color(name, kept)
                t2 = time.perf_counter()
                image = self.engine.join(result["model"], photo, kept, points, palette)
                t3 = time.perf_counter()
                tmp = self.files / f".{name}.{secrets.token_hex(4)}"
                image.save(tmp, format="PNG", compress_level=1)  # fast: it changes often
                os.replace(tmp, self.files / name)
                self._save_thumb(image, name, method=0)  # what the person waits to see
                for ext in DERIVED:  # made from the old colour: encoded again when asked for
                    (self.files / f"{stem}.{ext}").unlink(missing_ok=True)
                t4 = time.perf_counter()
        finally:
            for i in reversed(locks):
                self._encode_locks[i].release()
        self.store.set_points(result["id"], web_points.dumps(points))
        log.info(
            "re-coloured result %s with %d colour point(s) in %.0f ms",
            result["id"], len(points or ()), 1000 * (t4 - t0),
        )  # fmt: skip
        steps = {"decode": t1 - t0, "network": t2 - t1, "colour": t3 - t2, "save": t4 - t3}
        return {**steps, "total": t4 - t0}

    # ------------------------------------------------------------------ colour suggestions
    def _suggester(self) -> Suggester:
        if self.suggester is None:
            raise WebError(
                503,
                "colour suggestions are off on this server: it has no suggestions model "
                "(models/suggest/colour-classes, or SUGGEST_MODEL in its settings)",
            )
        return self.suggester

    def suggest(self, job: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """The likely colours at the spot `values` names (x, y, k: web/suggestions.py) of a
        kept upload. Its colour distribution is computed on the first request, in an inference
        slot, and kept beside the upload until it expires; later ones only read it."""
        suggester = self._suggester()
        size = (job["width"], job["height"])  # the upright photo's: a 400 before any slot
        x, y, k = parse_spot(values, size)
        path = self.files / (job["stored"] or "-")
        if not job["stored"] or not path.is_file():
            raise WebError(404, "this photo has expired; upload it again")
        cache = self.files / classes_name(job["stored"])
        # one computation per upload: a second request waits, then finds the file
        with self._encode_locks[hash(cache.name) % len(self._encode_locks)]:
            kept = load_distribution(cache)
            if kept is None:
                with self.engine.slot(job["width"] * job["height"]):
                    probs, L = suggester.distribution(decode(path, job["filename"]))
                save_distribution(cache, probs, L)
                kept = torch.from_numpy(probs), torch.from_numpy(L)
        found = answer(*kept, suggester.bins(), size, x, y, k)
        return dict(x=x, y=y, model=suggester.name, suggestions=as_json(found))

    def suggest_upload(self, file: FileStorage | None, values: Mapping[str, Any]) -> dict:
        """The API's suggestions: the same answer for a photo sent with the request (kept only
        while it is read: an API upload keeps no files)."""
        suggester = self._suggester()
        path, filename = save_upload(self.files, file)
        try:
            _, width, height = check_header(path, filename, self.settings.max_pixels)
            with self.engine.slot(width * height):
                photo = decode(path, filename)
                x, y, k = parse_spot(values, photo.size)  # the upright photo's pixels
                probs, L = suggester.distribution(photo)
        finally:
            path.unlink(missing_ok=True)
        found = answer(torch.from_numpy(probs), torch.from_numpy(L), suggester.bins(),
                       photo.size, x, y, k)  # fmt: skip
        w, h = photo.size
        return dict(x=x, y=y, width=w, height=h, model=suggester.name, suggestions=as_json(found))


def stored_palette(job: dict[str, Any]) -> Palette | None:
    """The reference palette a job's upload was coloured with (None: none)."""
    if not job.get("reference"):
        return None
    try:
        return Palette.from_json(job["reference"])
    except (ReferencePhotoError, ValueError, KeyError, TypeError):
        raise WebError(
            409, "this photo's reference photo was kept by an older version; upload both again"
        ) from None


def reference_name(job: dict[str, Any]) -> str | None:
    """The file name of the reference photo a job was coloured like, for the page."""
    palette = stored_palette(job)
    return palette.name if palette else None


def current_service() -> Service:
    """The service of the app serving this request."""
    return current_app.extensions["pix2color"]
