"""The one error a file reader raises: the whole file is rejected, with what to do."""

from __future__ import annotations


class FileRejected(Exception):
    """The file cannot be imported at all; ``str(exc)`` tells the user what to do."""

    def __init__(self, message: str, *, code: str = "invalid_file") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
