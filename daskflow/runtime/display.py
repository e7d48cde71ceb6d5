"""Which display a run gets: a live view on a terminal a person watches or in a notebook
(rich, through ipywidgets when installed), else plain lines.

Apart from :mod:`.events` so that the observer base never imports its rich subclass
(``progress`` imports ``events``, not the other way round).
"""

from __future__ import annotations

import sys

from .events import PlainLog, RunObserver, interactive


def in_notebook() -> bool:
    """True in a Jupyter kernel (IPython with a kernel), where output goes to a cell."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def choose_observer(*, quiet: bool = False, stream_output: bool = True) -> RunObserver:
    """The display a run gets by default: a live view on a terminal, else plain lines.

    >>> choose_observer(quiet=True)            # doctest: +ELLIPSIS
    <daskflow.runtime.events.PlainLog object at ...>
    """
    if not quiet and in_notebook():
        # rich draws its live view in a notebook through an ipywidgets Output
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return PlainLog(quiet=quiet, stream_output=stream_output)
        from rich.console import Console

        from .progress import RichProgress
        return RichProgress(Console(force_jupyter=True), stream_output=stream_output)
    if quiet or not interactive():
        return PlainLog(quiet=quiet, stream_output=stream_output)
    from .progress import RichProgress  # rich loads only for a terminal
    return RichProgress(stream_output=stream_output)
