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
    CTRL_C = 130  # SIGINT: 128 + 2
    TERM = 143  # SIGTERM: 128 + 15, after the same clean-up as Ctrl-C


_LAST_SIGNAL: list[int] = []


def note_signal(signum: int) -> None:
    """Remember which signal stopped the run (the handler that turns it into KeyboardInterrupt calls this)."""
    _LAST_SIGNAL[:] = [signum]


def interrupt_status() -> ExitStatus:
    """The exit code of a run stopped by a signal: 143 for SIGTERM, else 130."""
    import signal

    return ExitStatus.TERM if _LAST_SIGNAL == [signal.SIGTERM] else ExitStatus.CTRL_C


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
