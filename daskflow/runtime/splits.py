"""Resources per foreach split: each split's request, computed before any split is placed.

A step after a foreach may size its workers from each split's input
(``@resources(memory=lambda item: ...)``, or a size class chosen the same way).
When the foreach step has finished, the driver sends one small task,
:func:`size_splits`, to the run's default cluster: it reads the foreach list
from the datastore (where the parent task stored it), calls the step's
``split_request`` on every item and returns :class:`SplitSizes`: the distinct
requests, the position of each split's request among them, and the first split
that asked for each.  The driver thus never loads the items themselves (a
foreach of 100,000 items comes back as a few requests and 100,000 small ints),
and the functions run with the flow's code of this run, also on ``resume``
(a cloned parent's stored list is sized again with the code as it is now).

The driver then checks each distinct request with the step's backend
(:func:`placements_for`), before the first split runs: a request no backend can
meet, or a function that raised, refuses the run with
:class:`SplitResourcesError`, naming the split's index and input.  Splits with
the same request share one cluster of exactly that size, which closes after its
last split.  :class:`SplitSizing` is the driver's record of the sizings asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..clusters import ResourceRequest, ResourceRequestError, get_backend
from ..inputs import ForeachFrame
from .context import RunContext, TaskRef
from .plan import Placement

#: characters of a split's input shown in an error
INPUT_CHARS = 120


class SplitResourcesError(ResourceRequestError):
    """A foreach split's resources cannot be computed or met; found before any split runs."""

    headline = "Resources per split refused"


@dataclass(frozen=True)
class SplitSizes:
    """What :func:`size_splits` returns: small, whatever the width of the foreach.

    ``requests`` are the distinct requests in order of first use, ``of[i]`` the
    position of split ``i``'s request in them, and ``first[j]`` the index and input
    (as short text) of the first split that asked for ``requests[j]``.  ``refused``
    says why a split's request could not be computed (then nothing else is set).
    """

    requests: tuple[ResourceRequest, ...] = ()
    of: tuple[int, ...] = ()
    first: tuple[tuple[int, str], ...] = ()
    refused: str = ""


@dataclass(frozen=True)
class SplitsSized:
    """The driver's event: a :func:`size_splits` future finished (or failed)."""

    future: Any


def size_splits(ctx: RunContext, parent: TaskRef, step: str) -> SplitSizes:
    """On a worker: the request of each split of ``parent``'s foreach into ``step``."""
    split_request = ctx.plan(step).split_request
    assert split_request is not None
    store = ctx.store()
    positions: dict[ResourceRequest, int] = {}
    of: list[int] = []
    first: list[tuple[int, str]] = []
    items = store.iter_foreach_items(ctx.run_id, parent.step, parent.task_id, parent.attempt)
    for index, item in enumerate(items):
        try:
            request = split_request(item)
        except Exception as exc:  # noqa: BLE001  the user's function or its value: said plainly
            return SplitSizes(refused=f"Step '{step}', split {index} (input "
                                      f"{short_repr(item)}): {exc}")
        position = positions.setdefault(request, len(positions))
        if position == len(first):
            first.append((index, short_repr(item)))
        of.append(position)
    return SplitSizes(tuple(positions), tuple(of), tuple(first))


def placements_for(step: str, sizes: SplitSizes, placement: Placement) -> list[Placement]:
    """The placement of each distinct request of ``sizes``, each checked by the backend.

    Raises :class:`SplitResourcesError` naming the first split that asked for a request
    the backend can never meet (or the split whose request could not be computed).
    """
    if sizes.refused:
        raise SplitResourcesError(sizes.refused)
    backend = get_backend(placement.backend)
    placements = []
    for request, (index, shown) in zip(sizes.requests, sizes.first):
        split = placement.for_split(request)
        try:
            backend.check(split.request)
        except ResourceRequestError as exc:
            raise SplitResourcesError(
                f"Step '{step}', split {index} (input {shown}) asks for "
                f"{request.describe()}: {exc}") from None
        placements.append(split)
    return placements


def split_groups(step: str, frames_list: list[tuple[ForeachFrame, ...]], sizes: SplitSizes,
                 placement: Placement) -> list[tuple[Placement, list[tuple[ForeachFrame, ...]]]]:
    """Each distinct size's placement with the frames of its splits, every size checked
    by the backend first (see :func:`placements_for`)."""
    if not sizes.refused and len(sizes.of) != len(frames_list):  # never leave a split out
        raise SplitResourcesError(
            f"Step '{step}': {len(sizes.of)} split sizes came back for {len(frames_list)} "
            f"splits: its foreach list changed meanwhile. Run the flow again.")
    groups: list[tuple[Placement, list[tuple[ForeachFrame, ...]]]] = [
        (split, []) for split in placements_for(step, sizes, placement)]
    for frames, position in zip(frames_list, sizes.of):
        groups[position][1].append(frames)
    return groups


class SplitSizing:
    """The sizings of foreach splits in flight: a :func:`size_splits` future's key ->
    which splits it sizes."""

    def __init__(self) -> None:
        self.asked: dict[str, tuple[str, tuple[tuple[ForeachFrame, ...], ...], TaskRef]] = {}

    def ask(self, key: str, step: str, frames_list: Sequence[tuple[ForeachFrame, ...]],
            parent: TaskRef) -> None:
        self.asked[key] = (step, tuple(frames_list), parent)

    def answered(self, key: str, sizes: SplitSizes | None, error: Any,
                 placements: Mapping[str, Placement | None]) -> tuple[str, TaskRef, list[
                     tuple[Placement, list[tuple[ForeachFrame, ...]]]]]:
        """The step, its foreach's ref and each size's splits, once the sizing ``key``
        came back with ``sizes`` (None: it failed with ``error``); ``placements`` are the
        steps' own.  Raises :class:`SplitResourcesError` when a size cannot be met or
        computed: before any split runs."""
        step, frames_list, parent = self.asked.pop(key)
        if sizes is None:
            raise SplitResourcesError(
                f"Step '{step}': the resources of its splits could not be computed: {error}")
        static = placements.get(step)
        assert static is not None
        return step, parent, split_groups(step, list(frames_list), sizes, static)


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to about :data:`INPUT_CHARS` characters; never raises."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= INPUT_CHARS else text[:INPUT_CHARS - 3] + "..."
