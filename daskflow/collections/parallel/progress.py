"""A progress bar for ``parallel_imap_unordered``, where someone can see it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress(total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal (and not in a step); else nothing.

    Yields the function that advances it by a number of items.
    """
    from ...current import current

    isatty = getattr(sys.stderr, "isatty", None)
    if current.is_running_flow or not (isatty and isatty()):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("parallel_map"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("items"), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task("parallel_map", total=total)
        yield lambda n: bar.advance(task, n)
