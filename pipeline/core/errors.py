"""Errors that carry the offending file, so every failure prints as one readable line."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: a PDF, label file or parameter the pipeline cannot use.

    The CLI prints ``str(err)`` as one line on stderr; with ``--keep-going`` the
    stage records it in ``errors.json`` and carries on with the rest of the corpus.
    """

    def __init__(self, path: str | Path | None, reason: str):
        self.path = str(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)
