"""The one error a file reader raises: the whole file is rejected, with what to do."""

from __future__ import annotations

from typing import Any

from kontak.messages import Text


class FileRejected(Exception):
    """The file cannot be imported at all; ``message`` (a Text) tells the user what to do.

    ``code`` is the message's key (``file.empty``, ``header.unknown``…), stable for programs.
    """

    def __init__(self, key: str, /, **params: object) -> None:
        self.message = Text(key, **params)
        super().__init__(self.message)
        self.code = key

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRejected:
        """The rejection another process reported as ``message.to_json()``."""
        text = Text.from_json(data)
        return cls(text.key, **text.params)
