"""Colour points as the page and the API send them: one form field `points`, the CLI's JSON.

    points={"points": [{"x": 120, "y": 80, "color": "#2050c0", "radius": 3}]}

x, y in the photo's own pixels (hints.py says the rest). Everything is checked here, on the
server, by hints.py's reader: a refusal is a PointsError (answered 400) that names the field,
e.g. `points: points[2].color: '#zz0000' is not a colour; use '#rrggbb'`. A request carries at
most MAX_POINTS points (a setting) and FIELD_CHARS characters, so that a hostile body is refused
before it costs more than a glance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pix2color.guide.points import Point, PointsError, color_hex, loads_json, parse_points

FIELD = "points"
FIELD_CHARS = 64 * 1024  # 200 points take about 12 KB


def parse_field(text: str | None, max_points: int) -> list[Point] | None:
    """The `points` field's text -> [Point] (None when absent or empty); PointsError if unusable."""
    if text is None or not text.strip():
        return None
    if len(text) > FIELD_CHARS:
        raise PointsError(
            f"{FIELD}: {len(text)} characters; at most {FIELD_CHARS} ({max_points} points)"
        )
    data = loads_json(text, FIELD, '; send {"points": [{"x": 120, "y": 80, "color": "#2050c0"}]}')
    if isinstance(data, dict) and isinstance(data.get("points"), list):
        n = len(data["points"])
        if n > max_points:  # before each point is read
            raise PointsError(f"{FIELD}: {n} points; at most {max_points} per photo")
    return parse_points(data, FIELD)


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(v, 2)


def as_json(points: Sequence[Point]) -> dict[str, Any]:
    """[Point] -> {"points": [...]}: the file `pix2color colorize --hints` reads."""
    return {
        "points": [
            {"x": _number(p.x), "y": _number(p.y), "color": color_hex(p.color),
             "radius": _number(p.radius)}
            for p in points
        ]
    }  # fmt: skip


def dumps(points: Sequence[Point] | None) -> str | None:
    """What the store keeps of a result's points (None: none)."""
    return json.dumps(as_json(points), separators=(",", ":")) if points else None


def loads(text: str | None) -> list[Point]:
    """A result's kept points (the store's text) -> [Point]."""
    return parse_points(json.loads(text), "stored points") if text else []
