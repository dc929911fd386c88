"""The photo sources of `data fetch`: the table in sources.toml, read into frozen `Source`s.

sources.toml lies beside this module and ships in the package. Reading it is strict: a key this
module does not know, a missing key or a value of the wrong type fails at import, with a message
naming the source and the key, so that a typo never silently loses a photo, an exclusion or a
licence file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files

TABLE = "sources.toml"
# Debian policy 5.6.1: lower case letters, digits, "+", "-" and ".", at least two characters.
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")


@dataclass(frozen=True)
class Source:
    """A Debian package and the glob patterns (one per path component) of its photos."""

    package: str
    patterns: tuple[str, ...]  # paths inside the package; "*" never crosses a "/"
    rcc: bool = False  # the patterns name Qt resource files that hold the photos
    default: bool = True
    note: str = ""
    # Photo file names (globs) to leave out: drawings that are not photos, checked by eye.
    exclude: tuple[str, ...] = ()
    # A KPhotoAlbum index.xml inside the package: its angle="90|180|270" attributes say how to
    # turn each photo upright (these JPEGs carry no EXIF orientation), its labels name scenes.
    album_index: str = ""
    # Licence or credit files inside the package, kept beside COPYRIGHT (e.g. a wallpaper
    # folder's own licence that Debian's copyright file does not repeat).
    licence_files: tuple[str, ...] = ()

    @property
    def copyright_member(self) -> str:
        """Where a Debian package keeps its copyright file."""
        return f"usr/share/doc/{self.package}/copyright"


# The keys of a [sources.<package>] table: key -> (type of its value, must it be given).
# `tuple` is a TOML list of strings; the package is the table's name.
KEYS: dict[str, tuple[type, bool]] = {
    "patterns": (tuple, True),
    "note": (str, True),
    "rcc": (bool, False),
    "default": (bool, False),
    "exclude": (tuple, False),
    "album_index": (str, False),
    "licence_files": (tuple, False),
}


class SourceTableError(ValueError):
    """sources.toml cannot be read as a source table; the message names the source and key."""


def load_sources(text: str | None = None, where: str | None = None) -> dict[str, Source]:
    """{package: Source} in the table's order, from `text` (default: the shipped sources.toml)."""
    if text is None:
        resource = files(__package__).joinpath(TABLE)
        text, where = resource.read_text(encoding="utf-8"), where or str(resource)
    where = where or TABLE
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SourceTableError(f"{where}: not valid TOML ({err})") from None
    unknown = sorted(set(table) - {"sources"})
    if unknown:
        raise SourceTableError(
            f"{where}: unknown top-level key {unknown[0]!r}; every source is a "
            "[sources.<package>] table"
        )
    sources = table.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise SourceTableError(f"{where}: no [sources.<package>] table")
    return {
        name: _source(name, entry, f"{where}: [sources.{name}]") for name, entry in sources.items()
    }


def _source(name: str, entry: object, here: str) -> Source:
    """One [sources.<name>] table -> its Source; SourceTableError naming the key if malformed."""
    if not _PACKAGE_NAME.fullmatch(name):
        raise SourceTableError(f"{here}: {name!r} is not a Debian package name")
    if not isinstance(entry, dict):
        raise SourceTableError(f"{here}: must be a table of keys, got {entry!r}")
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise SourceTableError(
            f"{here}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}"
        )
    values = {}
    for key, (kind, required) in KEYS.items():
        if key in entry:
            values[key] = _value(entry[key], kind, f"{here}: {key!r}")
        elif required:
            raise SourceTableError(f"{here}: missing key {key!r}")
    if not values["patterns"]:
        raise SourceTableError(f"{here}: 'patterns' is empty; name the photos' paths")
    return Source(name, **values)


def _value(value: object, kind: type, what: str) -> object:
    """`value` checked against `kind` (a TOML list of strings for tuple) and converted."""
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SourceTableError(f"{what} must be a list of strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, kind):
        raise SourceTableError(f"{what} must be a {kind.__name__}, got {value!r}")
    return value


SOURCES: dict[str, Source] = load_sources()
DEFAULT_SOURCES: tuple[str, ...] = tuple(name for name, s in SOURCES.items() if s.default)
