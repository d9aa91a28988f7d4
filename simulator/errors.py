"""User-facing input errors.

Every problem with what a user gave us (a scenario file, a data path, an image, an impossible
parameter) is raised as :class:`InputError` with one line that names the file, key or item and
what is allowed. The CLI prints that line and exits with status 2, without a traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input. ``str(err)`` is the one-line message shown to the user."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
