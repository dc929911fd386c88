"""The `pix2color` sub-commands: one module each, the only layer that reads argparse.

Each module has `register(subparsers)`, which adds its parser with `func=run`. `run(args)`
returns an exit status for work that partly failed (each failed item printed on its own
`error:` line with `print_error`), and raises a `pix2color.errors.Pix2ColorError` when nothing
can be done; `pix2color.cli.main` prints that as one line and returns its exit status.
"""

from __future__ import annotations

import sys

# the order `pix2color --help` lists them in
NAMES = ("colorize", "demo", "models", "train", "calibrate", "evaluate", "export", "data", "serve")


def print_error(message: str) -> None:
    """One `error: ...` line on stderr for an item that failed while the others go on."""
    print(f"error: {message}", file=sys.stderr)
