"""The `pix2color` sub-commands: one module each, the only layer that reads argparse.

Each module has `register(subparsers)`, which adds its parser (its help line from COMMANDS)
with `func=run`. `run(args)`
returns an exit status for work that partly failed (each failed item printed on its own
`error:` line with `print_error`), and raises a `pix2color.errors.Pix2ColorError` when nothing
can be done; `pix2color.cli.main` prints that as one line and returns its exit status.
"""

from __future__ import annotations

import sys

# each command's one line in `pix2color --help`, in its order: the cli lists them from here
# and imports a command's module only when that command runs (its --help included), so that
# `pix2color --help` and `pix2color colorize` do not load what `train` or `evaluate` need
COMMANDS = {
    "colorize": "colour photos at their full resolution",
    "demo": "colour the sample photos and write a before/after sheet",
    "models": "list the installed models and where they are",
    "train": "train a model from a recipe in configs/",
    "calibrate": (
        "choose how bold a model's colour is (class models: temperature and prior boost; "
        "L1 models: ab gain), on the validation photos"
    ),
    "evaluate": "score models on the held-out test photos (or compare folders of results)",
    "export": "export a model to ONNX (for onnxruntime)",
    "data": "fetch, prepare and study the training photos",
    "serve": "run the web page and JSON API (waitress; never debug mode)",
}


def print_error(message: str) -> None:
    """One `error: ...` line on stderr for an item that failed while the others go on."""
    print(f"error: {message}", file=sys.stderr)
