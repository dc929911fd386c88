"""Get files out of a Debian package without installing it, for `data fetch`.

The .deb is downloaded with `apt-get download` into a cache folder, its version read with
`dpkg-deb -f`, its members listed and unpacked with `dpkg-deb --fsys-tarfile X.deb | tar`.
Every command goes through a `Runner` (tests stand in for apt-get with one), and its failures
become a `FetchError` that names the package and says what to do.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from pix2color.errors import WorkFailed

logger = logging.getLogger(__name__)

# runner(args, cwd) runs one command and returns its stdout; it raises
# subprocess.CalledProcessError on a non-zero exit and FileNotFoundError for a missing program.
Runner = Callable[[Sequence[str], Path | None], str]


class FetchError(WorkFailed, RuntimeError):
    """A source that could not be fetched; the message names the package and what to do."""


def run_command(args: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command, return its stdout; raise CalledProcessError (with stderr) if it fails."""
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, list(args), done.stdout, done.stderr)
    return done.stdout


def run_step(runner: Runner, args: Sequence[str], cwd: Path | None, package: str, hint: str) -> str:
    """Call the runner and turn its failures into a FetchError that says what to do."""
    try:
        return runner(args, cwd)
    except FileNotFoundError:
        raise FetchError(
            f"{package}: the program {args[0]!r} was not found; `data fetch` needs a Debian or "
            f"Ubuntu system with apt-get and dpkg-deb. {hint}"
        ) from None
    except subprocess.CalledProcessError as err:
        stderr = (err.stderr or "").strip().splitlines()
        detail = stderr[-1] if stderr else f"exit status {err.returncode}"
        raise FetchError(f"{package}: `{shlex.join(args)}` failed ({detail}). {hint}") from None


def download(package: str, cache: Path, runner: Runner) -> Path:
    """The package's .deb in `cache`, downloaded with apt-get unless already there."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if found:
        logger.info("%s: using cached %s", package, found[-1])
        return found[-1]
    logger.info("%s: apt-get download into %s", package, cache)
    hint = (
        f"Check the package name, run `apt-get update` (as root) and that the Debian mirror is "
        f"reachable, or put {package}_*.deb into {cache} by hand."
    )
    run_step(runner, ["apt-get", "download", package], cache, package, hint)
    found = sorted(cache.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FetchError(f"{package}: apt-get download left no .deb in {cache}. {hint}")
    return found[-1]


def damaged_hint(deb: Path) -> str:
    """What to do when a command on a downloaded .deb fails."""
    return f"The file {deb} may be damaged: delete it and run `data fetch` again."


def version_of(deb: Path, package: str, runner: Runner) -> str:
    """The package version recorded in the .deb."""
    args = ["dpkg-deb", "-f", str(deb), "Version"]
    return run_step(runner, args, None, package, damaged_hint(deb)).strip()


def list_members(deb: Path, package: str, runner: Runner) -> str:
    """`tar -t`'s listing of the files the .deb would install, one per line."""
    args = ["bash", "-o", "pipefail", "-c", 'dpkg-deb --fsys-tarfile "$0" | tar -t', str(deb)]
    return run_step(runner, args, None, package, damaged_hint(deb))


def unpack(deb: Path, member_list: Path, into: Path, package: str, runner: Runner) -> None:
    """Unpack the members named in `member_list` (one per line, as tar spells them) into `into`."""
    run_step(
        runner,
        ["bash", "-o", "pipefail", "-c",
         'dpkg-deb --fsys-tarfile "$0" | tar -x -C "$1" -T "$2"',
         str(deb), str(into), str(member_list)],
        None, package, damaged_hint(deb),
    )  # fmt: skip
