"""What a task reads: its foreach frames, and the artifacts of the tasks before it.

Below both the user's flow class (:mod:`daskflow.flowspec`) and the runtime, which
builds a join's :class:`Inputs` and passes :class:`ForeachFrame` values around.

For a cached step (``@cache``) the task also notes *what* it read, by name, in a set
(``_df_reads``) that the runtime gives it: ``a:NAME`` an artifact of its own (one it
did not have counts too), ``p:NAME`` a parameter, ``x`` its place in its foreach,
``j:NAME`` an artifact of its join's inputs, ``jx`` their places and items.  The
runtime keys the task by the content hashes of those (``runtime/cache_keys.py``):
names only here, never a value read or hashed.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .exceptions import did_you_mean

if TYPE_CHECKING:
    from .datastore import ArtifactRef, ArtifactStore

_FRAME_VALUE_CHARS = 30  # Metaflow's MAXIMUM_FOREACH_VALUE_CHARS


class ForeachFrame(NamedTuple):
    """One open foreach around a task: which split of which fan-out it is."""

    step: str
    task_id: str
    attempt: int
    index: int
    num_splits: int


class ForeachStackFrame(NamedTuple):
    """One entry of ``self._foreach_stack``, shaped as Metaflow's ``ForeachFrame``.

    ``step`` is the step the foreach fans out to, ``var`` the foreach attribute, and
    ``value`` the item as short text (at most 30 characters), as Metaflow keeps it.
    """

    step: str
    var: str
    num_splits: int
    index: int
    value: str


class ForeachPart:
    """A foreach item that stands for a piece of a bigger value: one partition of a Dask
    collection.  The split that works on it loads it (:meth:`load`) when it first reads
    ``self.input``, so the piece is read where the split runs, never where it fanned out.
    The pieces themselves live in :mod:`daskflow.collections.foreach`.
    """

    def load(self, store: ArtifactStore) -> Any:
        raise NotImplementedError


def frame_text(item: Any) -> str:
    """A foreach item as Metaflow shows it in a stack frame."""
    if isinstance(item, (str, int, float, bool, ForeachPart)):
        return str(item)[:_FRAME_VALUE_CHARS]
    return reprlib.Repr().repr(item)[:_FRAME_VALUE_CHARS]


class ArtifactSource:
    """Lazy artifact reading shared by a running flow and a join's input views."""

    _df_store: ArtifactStore
    _df_refs: dict[str, ArtifactRef]
    _df_frames: tuple[ForeachFrame, ...]
    _DF_READS = ("a:", "x")   # how this source's reads are named (see the module)

    def _note(self, name: str | None = None) -> None:
        """Note a read for the cache: artifact ``name``, or (None) the foreach place."""
        reads = self.__dict__.get("_df_reads")
        if reads is not None:
            kind, place = self._DF_READS
            reads.add(place if name is None else kind + name)

    def _load(self, name: str) -> Any:
        return self._df_store.get_artifact(self._df_refs[name], name)

    def _frame_item(self, frame: ForeachFrame) -> Any:
        """The foreach item as stored (a :class:`ForeachPart` not loaded)."""
        run_id = self._df_run_id  # type: ignore[attr-defined]
        return self._df_store.read_foreach_item(run_id, frame.step, frame.task_id,
                                                frame.attempt, frame.index)

    def _frame_value(self, frame: ForeachFrame) -> Any:
        """The foreach item, a :class:`ForeachPart` loaded (once per task)."""
        loaded = self.__dict__.setdefault("_df_loaded_parts", {})
        if frame in loaded:
            return loaded[frame]
        item = self._frame_item(frame)
        if isinstance(item, ForeachPart):
            item = loaded[frame] = item.load(self._df_store)
        return item

    @property
    def index(self) -> int | None:
        """The index of this foreach split in its list (innermost foreach)."""
        self._note()
        return self._df_frames[-1].index if self._df_frames else None

    @property
    def input(self) -> Any:
        """The item of the foreach list that this split works on (innermost foreach)."""
        return self._frame_value(self._df_frames[-1]) if self._df_frames else None

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """``[(index, num_splits, value), ...]`` for each enclosing foreach, outermost first."""
        self._note()
        return [(f.index, f.num_splits, self._frame_value(f)) for f in self._df_frames]


class InputView(ArtifactSource):
    """One input of a join step: the artifacts of the task that led to it; ``reads``, the
    join's set of names read (a cached join), or None."""

    _DF_READS = ("j:", "jx")

    def __init__(self, store: ArtifactStore, run_id: str, step: str, task_id: str,
                 refs: dict[str, ArtifactRef], frames: tuple[ForeachFrame, ...],
                 reads: set[str] | None = None) -> None:
        self._df_store = store
        self._df_run_id = run_id
        self._df_refs = refs
        self._df_frames = frames
        self._df_step = step
        self._df_task_id = task_id
        self._df_reads = reads

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._note(name)
        if name not in self._df_refs:
            raise AttributeError(
                f"Input from step '{self._df_step}' (task {self._df_task_id}) has no artifact "
                f"'{name}'.{did_you_mean(name, self._df_refs)}")
        value = self._loaded_ahead(name)
        self.__dict__[name] = value
        return value

    def _loaded_ahead(self, name: str) -> Any:
        """Artifact ``name``, from the read a join started ahead of this input
        (``runtime/read_ahead.py``) where there is one; a read that failed there is
        tried again here, so it fails, if it does, as any read would."""
        future = self.__dict__.get("_df_pending", {}).pop(name, None)
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001  read again below, with the store's retries
                pass
        return self._load(name)

    @property
    def input(self) -> Any:
        """The item the input's split worked on (a split's own item is always in its key;
        a join's inputs' items only once read)."""
        self._note()
        return super().input

    def __repr__(self) -> str:
        return f"<input {self._df_step}/{self._df_task_id}>"


class Inputs:
    """The ``inputs`` of a join: iterable in order, and by branch name (``inputs.a``)."""

    def __init__(self, views: Sequence[InputView], reads: set[str] | None = None) -> None:
        self._views = views   # may be lazy: a wide foreach's inputs are read when reached
        self._steps: dict[str, InputView] | None = None
        self._reads = reads   # a cached join's names read (see the module)

    @property
    def _by_step(self) -> dict[str, InputView]:
        if self._steps is None:
            self._steps = {v._df_step: v for v in self._views}
        return self._steps

    def __iter__(self) -> Iterator[InputView]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __getitem__(self, index: int) -> InputView:
        return self._views[index]

    def frame(self, name: str) -> Any:
        """Every input's DataFrame artifact ``name`` as one lazy dask DataFrame.

        One partition per stored Parquet file (a pandas artifact is one file, a
        dask one a file per partition), in input order; only footers and
        manifests are read here, rows when the result is computed, by the
        cluster's workers. Raises :class:`~daskflow.exceptions.ArtifactError`
        naming the input whose ``name`` is missing, not a DataFrame, or has other
        columns or dtypes than the first input's.

        >>> frame = inputs.frame("result")                     # doctest: +SKIP
        >>> self.totals = frame.groupby("k").x.sum().compute()
        """
        from .datastore.concat import concat_frames
        from .exceptions import ArtifactError

        if self._reads is not None:
            self._reads.add(f"j:{name}")
        sources = []
        for view in self._views:
            label = f"input {view._df_step}/{view._df_task_id}"
            if name not in view._df_refs:
                raise ArtifactError(
                    f"inputs.frame('{name}'): {label} has no artifact '{name}'."
                    f"{did_you_mean(name, view._df_refs)}")
            sources.append((label, view._df_refs[name]))
        return concat_frames(self._views[0]._df_store.artifacts, sources, name,
                             where="inputs.frame")

    def __getattr__(self, name: str) -> InputView:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._by_step[name]
        except KeyError:
            raise AttributeError(
                f"This join has no input from a step named '{name}'."
                f"{did_you_mean(name, self._by_step)} Inputs come from: "
                f"{', '.join(self._by_step)}.") from None
