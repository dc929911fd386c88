"""The web service's settings: read once from the Flask config in create_app, then frozen.

Only what the service's own code reads lives here; Flask's keys (SECRET_KEY, SESSION_*) stay in
the Flask config. A value of the wrong type is refused at start-up, naming its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from pix2color.errors import UsageError
from pix2color.web.errors import WebError


@dataclass(frozen=True)
class WebSettings:
    folder: Path  # the instance folder: database, files, config.py, secret_key
    default_model: str | None  # the API's model when a request names none
    default_size: int  # working size: the long side the model sees
    min_size: int
    max_size: int
    compare_models: int  # a page upload is coloured by this many models
    max_bytes: int  # per request (Flask's MAX_CONTENT_LENGTH)
    max_pixels: int  # per photo
    inference_slots: int
    inference_queue: int  # requests that may wait for a slot (more: busy at once)
    busy_timeout: float
    colorize_per_minute: int
    recolor_per_minute: int  # re-colourings with new colour points
    max_points: int  # colour points per photo and request
    ratings_per_minute: int
    ratings_per_hour: int
    file_ttl: float  # seconds uploads and results are kept
    cleanup_interval: float
    max_files_per_zip: int
    admin_session_ttl: float  # seconds an admin login lasts
    admin_token: str | None = field(repr=False)  # None: the statistics pages are off

    @classmethod
    def from_config(cls, config: Mapping[str, Any], folder: Path) -> WebSettings:
        def number(key: str, kind: type = int) -> Any:
            try:
                return kind(config[key])
            except (TypeError, ValueError):
                raise UsageError(f"{key} must be a number, got {config[key]!r}") from None

        return cls(
            folder=folder,
            default_model=config["DEFAULT_MODEL"] or None,
            default_size=number("DEFAULT_SIZE"),
            min_size=number("MIN_SIZE"),
            max_size=number("MAX_SIZE"),
            compare_models=number("COMPARE_MODELS"),
            max_bytes=number("MAX_CONTENT_LENGTH"),
            max_pixels=number("MAX_PIXELS"),
            inference_slots=number("INFERENCE_SLOTS"),
            inference_queue=number("INFERENCE_QUEUE"),
            busy_timeout=number("BUSY_TIMEOUT", float),
            colorize_per_minute=number("COLORIZE_PER_MINUTE"),
            recolor_per_minute=number("RECOLOR_PER_MINUTE"),
            max_points=number("MAX_POINTS"),
            ratings_per_minute=number("RATINGS_PER_MINUTE"),
            ratings_per_hour=number("RATINGS_PER_HOUR"),
            file_ttl=number("FILE_TTL", float),
            cleanup_interval=number("CLEANUP_INTERVAL", float),
            max_files_per_zip=number("MAX_FILES_PER_ZIP"),
            admin_session_ttl=number("ADMIN_SESSION_TTL", float),
            admin_token=str(config["ADMIN_TOKEN"]) if config["ADMIN_TOKEN"] else None,
        )

    @property
    def files(self) -> Path:
        """Where uploads and results live until they expire."""
        return self.folder / "files"

    def size(self, value: Any) -> int:
        """The working size from a form or query value (the default when empty), range-checked."""
        lo, hi = self.min_size, self.max_size
        if value in (None, ""):
            return self.default_size
        try:
            size = int(str(value).strip())
        except ValueError:
            size = None
        if size is None or not lo <= size <= hi:
            raise WebError(
                400,
                f"size must be a whole number of pixels from {lo} to {hi} (the long side the "
                f"model sees; {self.default_size} is typical, smaller gives bolder colour); "
                f"got {str(value)[:40]!r}",
            )
        return size


def current_settings() -> WebSettings:
    """The settings of the app serving this request."""
    return current_app.extensions["pix2color.settings"]
