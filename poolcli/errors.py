"""One domain exception family and the exit codes the CLI maps it to.

Numeric cores raise plain :class:`ValueError` (naming the parameter and quoting
the value, like NumPy). Everything that talks to files or users raises a
:class:`PoolcliError` subclass; ``cli.py`` translates it once into a one-line
message on stderr and a named exit code (after httpie's ``ExitStatus``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes."""

    SUCCESS = 0
    ERROR = 1  # an input or output failed (a broken image, an unwritable file)
    USAGE = 2  # a bad option value or stack string
    CTRL_C = 130


class PoolcliError(Exception):
    """Base class of every error poolcli reports to a user."""

    exit_code: ExitStatus = ExitStatus.ERROR


class UsageError(PoolcliError, ValueError):
    """A bad option value, stack string or configuration (exit code 2)."""

    exit_code = ExitStatus.USAGE


class StackSpecError(UsageError):
    """A malformed stack string; ``position`` points at the offending part."""

    def __init__(self, message: str, spec: str = "", position: int | None = None):
        self.spec = spec
        self.position = position
        if spec and position is not None:
            message = f"{message}\n  {spec}\n  {' ' * position}^"
        super().__init__(message)


class InputError(PoolcliError):
    """An input file that cannot be read or decoded (exit code 1)."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(PoolcliError):
    """An output that cannot be written (exit code 1)."""
