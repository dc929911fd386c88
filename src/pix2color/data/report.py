"""The report of `data prepare`: what it kept per split and source, and what it dropped, why.

It is written to out/prepare_report.json; every filter records its drops here (`drop`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from pix2color.data.split import SPLITS

logger = logging.getLogger(__name__)

DROP_REASONS = ("unreadable", "too_small", "transparent", "near_grey", "duplicate")


@dataclass
class PrepareReport:
    """What prepare() kept (per split and source) and dropped (per reason, with the files)."""

    src: str
    out: str
    layout: str  # "folder" or "paired" (a color/ + gray/ folder: only color/ is used)
    found: int = 0
    kept: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    kept_by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, object] = field(default_factory=dict)  # split_by="source": the plan
    dropped: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {reason: [] for reason in DROP_REASONS}
    )
    settings: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict, with the drop counts next to the dropped files."""
        d = asdict(self)
        d["dropped_counts"] = {reason: len(files) for reason, files in self.dropped.items()}
        return d


def drop(report: PrepareReport, reason: str, original: str, detail: str) -> None:
    """Record a dropped photo."""
    logger.debug("drop %s (%s): %s", original, reason, detail)
    report.dropped.setdefault(reason, []).append({"file": original, "why": detail})
