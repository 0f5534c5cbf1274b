"""Messages and progress bars: every stage reports through here, on stderr.

stdout stays free for what a command prints as its result; DVC and a terminal
both show stderr. ``-v`` shows debug messages, ``-q`` only warnings and errors
(and hides progress bars). Progress bars are drawn by ``rich`` only when stderr
is a terminal, so logs of CI and ``dvc repro`` runs stay plain lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
ROOT = "pipeline"
_console = Console(stderr=True, highlight=False, soft_wrap=True)


def get_logger(name: str) -> logging.Logger:
    """A logger under the package's root (``pipeline.train`` ...), configured by ``setup``."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


class _StderrHandler(logging.Handler):
    """One plain line per message on the current ``sys.stderr``.

    Why not ``logging.StreamHandler`` or rich's handler: the stream is looked up at
    each message (so a test runner that swaps ``sys.stderr`` sees it), and a message
    is never wrapped or boxed, so an error naming a file stays one line to grep.
    """

    PREFIX = {logging.ERROR: "error: ", logging.CRITICAL: "error: "}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.PREFIX.get(record.levelno, "") + self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break a stage
            self.handleError(record)


def setup(verbosity: int = 0) -> None:
    """Configure the package's loggers: -1 quiet, 0 normal, 1 verbose."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger(ROOT)
    root.handlers.clear()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def _show_progress() -> bool:
    return _console.is_terminal and logging.getLogger(ROOT).getEffectiveLevel() <= logging.INFO


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` under a progress bar on stderr (a plain loop when not a terminal)."""
    if not _show_progress():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
