"""The `pix2color` command: builds the parser from pix2color.commands and maps errors to exits.

The only place that turns an error into an `error: ...` line and an exit status; nothing in
pix2color imports this module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pix2color.commands import COMMANDS
from pix2color.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, Pix2ColorError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported and registered in full (None: every
    command's, as tests and docs want), the others are listed by their line in COMMANDS."""
    p = argparse.ArgumentParser(
        prog="pix2color",
        description="Give black-and-white photographs back their colour.",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for name, line in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"pix2color.commands.{name}").register(sub)
        else:
            sub.add_parser(name, help=line)
    for parser in sub.choices.values():  # every command's --help says what its status means
        parser.epilog = parser.epilog or EXIT_CODES_HELP
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; `section.key=value` overrides may also come after options."""
    words = sys.argv[1:] if argv is None else argv
    chosen = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else "")
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling `overrides` at the first option, so in
    # `train recipe.toml train.epochs=5 --resume` the overrides after an option come back
    # as "unknown": they are taken as overrides when they have the override shape.
    if (
        extra
        and getattr(args, "overrides", None) is not None
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pix2color` console script -> exit status (see EXIT_CODES_HELP)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except Pix2ColorError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; what was already written is kept", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
