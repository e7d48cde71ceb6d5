"""Which display a run gets: a live view on a terminal a person watches, else plain lines.

Apart from :mod:`.events` so that the observer base never imports its rich subclass
(``progress`` imports ``events``, not the other way round).
"""

from __future__ import annotations

from .events import PlainLog, RunObserver, interactive


def choose_observer(*, quiet: bool = False, stream_output: bool = True) -> RunObserver:
    """The display a run gets by default: a live view on a terminal, else plain lines.

    >>> choose_observer(quiet=True)            # doctest: +ELLIPSIS
    <daskflow.runtime.events.PlainLog object at ...>
    """
    if quiet or not interactive():
        return PlainLog(quiet=quiet, stream_output=stream_output)
    from .progress import RichProgress  # rich loads only for a terminal
    return RichProgress(stream_output=stream_output)
