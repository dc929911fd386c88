"""`pix2color models`: list the installed models and where each was found."""

from __future__ import annotations

import argparse
import json

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser(
        "models",
        help=COMMANDS["models"],
        description="Installed models are found by name, first match wins, in: each folder of "
        "$PIX2COLOR_MODELS (separated by ':'), the user folder ($XDG_DATA_HOME/pix2color/models, "
        "default ~/.local/share/pix2color/models), the source checkout's models/ when run from "
        "one, and the package itself (the default model). To install a model, copy its folder "
        "(model.safetensors + config.json) into one of them. A model that only suggests colours "
        "for colour points (the web page's 'likely here') is found in suggest/<name> of the "
        "same folders.",
    )
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pix2color.models.io import (
        CONFIG_FILE,
        WEIGHTS_FILE,
        architectures,
        installed_models,
        model_dirs,
        suggestion_model,
    )

    found = installed_models()
    print("searched: " + ", ".join(str(d) for d in model_dirs()))
    if not found:
        print("no models installed; put a model folder into one of the folders above")
        return EXIT_OK
    print(f"{'name':<18} {'architecture':<18} {'setting':<16} {'MB':>5}  folder")
    for name, folder in sorted(found.items()):
        info = json.loads((folder / CONFIG_FILE).read_text())
        arch, config = info.get("architecture", "?"), info.get("config", {})
        known = architectures()
        knob = known[arch].color_knob if arch in known else None
        value = config.get("ab_gain", 1.0) if knob == "gain" else config.get("temperature")
        setting = f"{knob} {value:g}" if knob and value is not None else knob or "-"
        mb = (folder / WEIGHTS_FILE).stat().st_size / 1e6
        print(f"{name:<18} {arch:<18} {setting:<16} {mb:5.1f}  {folder}")
    suggests = suggestion_model()
    if suggests is not None:  # it only suggests colours for colour points (the web page)
        print(f"colour suggestions (never colours a photo): {suggests}")
    return EXIT_OK
