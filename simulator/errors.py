"""User-facing errors.

Every problem with what a user gave us (a scenario file, a data path, an image, an impossible
parameter) is raised as :class:`InputError`, and every problem with where results go (a path
that is not ours to replace, a run directory another process is writing, a full disk, a
read-only folder) as :class:`OutputError`; work lost outside semsim (a Ray worker or node
that died mid-sweep) is a :class:`LostWorkError`. Each carries one line that names the file,
key or item and what is allowed or what to do. The CLI prints that line and exits with
status 2, without a traceback; the Python API raises the same exception with the same line.

:class:`Terminated` is what SIGTERM raises inside the CLI (the counterpart of
``KeyboardInterrupt`` for SIGINT), so both unwind the same way and leave finished work kept.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with control characters (newlines, tabs, NUL, ...) shown as escapes, so a key
    or path that contains one cannot break a message across lines."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class SemsimError(Exception):
    """A problem the user can fix. ``str(err)`` is the one-line message shown to the user."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(one_line(f"{where}: {message}" if where else message))


class InputError(SemsimError):
    """Bad user input (scenario, data, options)."""


class OutputError(SemsimError):
    """Results or caches cannot be written where asked (refused, locked or failing)."""


class LostWorkError(SemsimError):
    """Work was lost outside semsim (a Ray worker or node died); what finished is kept and the
    same command resumes."""


class Terminated(BaseException):
    """Raised by the CLI's SIGTERM handler; like ``KeyboardInterrupt``, not an ``Exception``."""
