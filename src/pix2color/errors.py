"""The error types every layer raises and the exit codes the command line maps them to.

A leaf module: it imports nothing of pix2color, so any module may raise these, and only the
command line (`pix2color.cli.main`) turns them into one `error: ...` line and an exit status.

Exit statuses, the same for every command:
- 0: everything asked for was done.
- 1 (EXIT_FAILED): the command ran, but some or all of the work failed (a photo that cannot be
  read, a training run that stopped on an error); what failed has its own line.
- 2 (EXIT_USAGE): nothing was done because the command line or a file it names cannot be used
  as given (a bad option, recipe, model name or output path); the message says what to change.
- 130: interrupted (Ctrl+C); anything already written is kept.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES_HELP = (
    "exit status: 0 done; 1 the command ran but some work failed (each failure has its line); "
    "2 nothing was done: an option, recipe, model or path cannot be used as given; "
    "130 interrupted"
)


class Pix2ColorError(Exception):
    """An error the user can act on; its message says what was wrong and what to do."""

    exit_code = EXIT_FAILED


class UsageError(Pix2ColorError, ValueError):
    """The command line or a file it names cannot be used as given (exit status 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A recipe or override that cannot be used; the message names the key and says why."""


class NotFound(UsageError, FileNotFoundError):
    """A file or folder the command needs is not there; the message says how to make it."""


class AlreadyExists(UsageError, FileExistsError):
    """The command would overwrite something it must not; the message says what to do."""


class ModelNotFoundError(NotFound):
    """A model name or path that does not lead to a usable model; the message lists what exists."""


class WorkFailed(Pix2ColorError):
    """The command ran but its work failed (exit status 1)."""


class Interrupted(Pix2ColorError):
    """Stopped by Ctrl+C; the message says how to continue (exit status 130)."""

    exit_code = EXIT_INTERRUPTED
