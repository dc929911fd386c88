"""Colour points: "this spot is this colour", given by a person, read and checked.

A point is a position in the input photo's own pixels (x to the right, y down, (0, 0) the
top-left pixel), a colour and an optional radius (photo pixels). Its file is JSON:

    {"points": [{"x": 120, "y": 80, "color": "#2050c0", "radius": 3}]}

Colours are "#rrggbb", "#rgb" or "rgb(r, g, b)" (0-255 each). Only the colour's chroma (Lab's
ab) is used: the photo keeps its own luminance. `propagate.py` spreads the points' colour over
the objects they sit on. A leaf module (no torch): every error is a PointsError naming the file
and the field, e.g. `hints.json: points[2].color: '#zz0000' is not a colour; use '#rrggbb'`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pix2color.errors import UsageError

MAX_RADIUS = 1000.0  # photo pixels; a bigger patch is no longer a "spot"
MAX_POINTS = 1000
POINT_FIELDS = ("x", "y", "color", "radius")


class PointsError(UsageError):
    """Colour points that cannot be used as given; the message names the file and the field."""


@dataclass(frozen=True)
class Point:
    """One colour point: (x, y) in the photo's pixels, colour (r, g, b) 0-255, radius in pixels."""

    x: float
    y: float
    color: tuple[int, int, int]
    radius: float = 0.0


_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_RGB = re.compile(r"rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)", re.IGNORECASE)


def parse_color(text: str) -> tuple[int, int, int]:
    """'#2050c0', '#25c' or 'rgb(32, 80, 192)' -> (r, g, b) 0-255; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"{_shown(text)} is not a colour; use '#rrggbb'")
    s = text.strip()
    if m := _HEX.fullmatch(s):
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(c + c for c in digits)
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    if m := _RGB.fullmatch(s):
        rgb = tuple(int(v) for v in m.groups())
        if max(rgb) > 255:
            raise ValueError(f"{text!r}: each of r, g, b must be 0 to 255")
        return rgb  # type: ignore[return-value]
    raise ValueError(f"{_shown(text)} is not a colour; use '#rrggbb'")


def color_hex(rgb: tuple[int, int, int]) -> str:
    """(r, g, b) -> '#rrggbb'."""
    return "#" + "".join(f"{v:02x}" for v in rgb)


def _shown(value) -> str:
    """A value for a message, cut short: a hostile file may hold a 4 MB string."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "?"
    return text if len(text) <= 40 else text[:37] + "..."


def _digits(value: int) -> str:
    try:
        return str(len(str(abs(value))))
    except ValueError:  # Python writes no int of more than sys.get_int_max_str_digits() digits
        return f"more than {sys.get_int_max_str_digits()}"


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PointsError(f"{where}: {_shown(value)} is not a number")
    try:
        number = float(value)  # an int of 309 digits or more overflows a float
    except OverflowError:
        raise PointsError(
            f"{where}: a number of {_digits(value)} digits is far too large; give pixels of the "
            "photo"
        ) from None
    if not math.isfinite(number):
        raise PointsError(f"{where}: {_shown(value)} is not a number")
    return number


def loads_json(text: str, source: str, advice: str = "") -> object:
    """JSON text -> its value; a PointsError naming `source` (and ending with `advice`) for bad
    JSON or a number of thousands of digits, which Python refuses to read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        why = f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        why = (
            f"a number with more than {sys.get_int_max_str_digits()} digits; x, y and radius "
            "are pixels of the photo"
        )
    raise PointsError(f"{source}: {why}{advice}")


def parse_points(data, source: str = "hints") -> list[Point]:
    """The decoded JSON {"points": [...]} -> [Point]; a PointsError naming source and field."""
    if not isinstance(data, dict) or "points" not in data:
        raise PointsError(f'{source}: expected an object {{"points": [...]}}')
    extra = sorted(set(data) - {"points"})
    if extra:
        raise PointsError(f"{source}: unknown key {_shown(extra[0])}; the only key is 'points'")
    items = data["points"]
    if not isinstance(items, list):
        raise PointsError(f"{source}: points: expected a list of points, got {_shown(items)}")
    if len(items) > MAX_POINTS:
        raise PointsError(f"{source}: points: {len(items)} points; at most {MAX_POINTS}")
    points = []
    for i, item in enumerate(items):
        where = f"{source}: points[{i}]"
        if not isinstance(item, dict):
            raise PointsError(f'{where}: expected {{"x": ..., "y": ..., "color": "#rrggbb"}}')
        for key in ("x", "y", "color"):
            if key not in item:
                raise PointsError(f"{where}: the field {key!r} is missing")
        unknown = sorted(set(item) - set(POINT_FIELDS))
        if unknown:
            raise PointsError(
                f"{where}: unknown field {_shown(unknown[0])}; use {', '.join(POINT_FIELDS)}"
            )
        x, y = _number(item["x"], f"{where}.x"), _number(item["y"], f"{where}.y")
        radius = _number(item.get("radius", 0), f"{where}.radius")
        if not 0 <= radius <= MAX_RADIUS:
            raise PointsError(f"{where}.radius: {radius:g} must be 0 to {MAX_RADIUS:g} pixels")
        try:
            color = parse_color(item["color"])
        except ValueError as e:
            raise PointsError(f"{where}.color: {e}") from None
        points.append(Point(x, y, color, radius))
    return points


def read_points(path: Path | str) -> list[Point]:
    """A hints JSON file -> [Point]; a PointsError naming the file (and the field) otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PointsError(f"{path}: no such hints file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PointsError(f"{path}: cannot read ({e})") from None
    return parse_points(loads_json(text, str(path)), str(path))


def check_points(points: Sequence[Point], size: tuple[int, int], source: str = "hints") -> None:
    """Refuse points outside a photo of size (width, height) with a PointsError naming them."""
    W, H = size
    for i, p in enumerate(points):
        if not (0 <= p.x < W and 0 <= p.y < H):
            raise PointsError(
                f"{source}: points[{i}]: ({p.x:g}, {p.y:g}) is outside the photo ({W}x{H}: x "
                f"0 to {W - 1}, y 0 to {H - 1})"
            )


def to_working(points: Sequence[Point], size: tuple[int, int], shape: tuple[int, int]):
    """Points in a photo of size (W, H) -> [(x, y, radius)] in a (h, w) copy of it (pixel
    centres map to pixel centres; the radius scales with the width)."""
    W, H = size
    h, w = shape
    sx, sy = w / W, h / H
    return [((p.x + 0.5) * sx - 0.5, (p.y + 0.5) * sy - 0.5, p.radius * sx) for p in points]
