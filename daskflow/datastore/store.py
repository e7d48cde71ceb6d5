"""One flow's datastore as one object: the layers, and what a task and the client call.

The datastore is layered by job, each layer a module of its own, the lower
ones knowing nothing of the higher (``docs/storage.md`` has the whole layout)::

    files.py          bytes in and out of a local folder or any fsspec filesystem,
                      every write atomic (a temporary name, then a rename; object
                      stores write whole objects)
    layout.py         every file name, defined once, and every path
    blobs.py          content-addressed blobs (artifacts' values, code packages)
    artifacts.py      values <-> references: serializers, inline refs, dask folders
    runs.py           run records, and the files kept with a run (its report)
    tasks.py          task records behind one interface: per-file (StoredRecords) ...
    batch_records.py  ... or held and committed as one object for a batch of splits
    foreach_items.py  a foreach step's items, each split reading only its own
    cache_index.py    which tasks of a step ran with which code (``@cache``)

:class:`ArtifactStore` builds them for one flow and forwards what tasks, the
runtime and the client call on every task, so they hold one object; the rest is
reached through its layers (``store.runs``, ``store.stored``, ``store.blobs``...).
A batch of splits gets a view of the same store whose task records are held and
committed as one object (:meth:`ArtifactStore.batched`).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from typing import Any

from dask.utils import parse_timedelta

from ..exceptions import ConfigurationError
from .artifacts import ArtifactRef, Artifacts
from .batch_records import BatchRecords
from .blobs import BlobStore
from .cache_index import CacheIndex, HeldCacheIndex
from .files import exclusive_create_setting, files_for
from .foreach_items import ForeachItems
from .layout import Layout
from .names import check_flow_name
from .runs import RunRecords
from .tasks import StoredRecords, TaskRecords

logger = logging.getLogger(__name__)


class ArtifactStore:
    """Reads and writes one flow's runs under a root folder or URL.

    >>> store = ArtifactStore(".daskflow", "HelloFlow")      # doctest: +SKIP
    >>> ref = store.put_artifact([1, 2, 3])
    >>> store.get_artifact(ref)
    [1, 2, 3]
    """

    def __init__(self, root: str, flow_name: str) -> None:
        self.root_url = root
        self.flow_name = check_flow_name(flow_name)
        self.files = files_for(root)
        self.layout = Layout(self.files.base, flow_name)
        self.blobs = BlobStore(self.files, self.layout)
        self.artifacts = Artifacts(self.files, self.layout, self.blobs)
        self.runs = RunRecords(self.files, self.layout, flow_name)
        self.stored = StoredRecords(self.files, self.layout)
        self.records: TaskRecords = self.stored   # where task records go (see batched)
        self.foreach = ForeachItems(self.files, self.layout)
        self.cache: CacheIndex | HeldCacheIndex = CacheIndex(self.files, self.layout)

    @property
    def local(self) -> bool:
        """True when the datastore is a folder on this machine."""
        return self.files.local

    @property
    def read_ahead(self) -> int:
        """How many inputs or tasks a reader of this store reads ahead: none on a local
        folder (its reads are already fast), ``datastore.read-ahead`` on an object store."""
        return 0 if self.local else read_ahead_setting()

    @property
    def flow_root(self) -> str:
        """The flow's folder, for messages (``.../.daskflow/HelloFlow``)."""
        return self.layout.flow

    @property
    def flow_url(self) -> str:
        """The flow's folder as a URL, protocol kept (``s3://bucket/prefix/HelloFlow``;
        a local folder stays a path): what the terminal shows at run start."""
        return self.files.url(self.layout.flow)

    # -- a batch of splits ----------------------------------------------------------------

    def batched(self, run_id: str, step: str, task_ids: list[str],
                journal: Any = None) -> ArtifactStore:
        """This store as the splits ``task_ids`` of one batch see it: their task records
        are held and written as one object by :meth:`commit`, their small artifacts
        inline, and so are their cache index entries; everything else is this store's.
        ``journal`` hears of each attempt's start and end (see :class:`BatchRecords`)."""
        view = copy.copy(self)
        view.records = BatchRecords(self.stored, run_id, step, task_ids, journal)
        view.cache = self.cache.held()
        return view

    def commit(self) -> bytes | None:
        """Write the task records held (a batch's), then their cache index entries;
        nothing for a store's own.  An entry that cannot be written costs a later run a
        cache miss, never the batch: it is logged and left out.  Returns the done records
        written, packed for the join (``datastore.unpack_results`` reads them), or None."""
        results = self.records.commit()
        try:
            self.cache.commit()
        except Exception as exc:  # noqa: BLE001  the records stand without it
            logger.warning("daskflow: the @cache index entries of a batch could not be "
                           "written (%s: %s); later runs will run those splits again.",
                           type(exc).__name__, exc)
        return results

    @property
    def defers_records(self) -> bool:
        """True for a batch's view: its task records are written at :meth:`commit`."""
        return self.records.defers

    # -- artifacts ----------------------------------------------------------------------------

    def put_artifact(self, value: Any, name: str = "?", inline: bool | None = None) -> ArtifactRef:
        """Store ``value`` once (by content) and return its reference; ``inline``
        (default: as the task records ask) keeps a small value in the reference."""
        if inline is None:
            inline = self.records.inline_artifacts
        return self.artifacts.put(value, name, inline=inline)

    def get_artifact(self, ref: ArtifactRef, name: str = "?") -> Any:
        return self.artifacts.get(ref, name)

    # -- runs -------------------------------------------------------------------------------

    def flow_exists(self) -> bool:
        return self.runs.flow_exists()

    def new_run_id(self) -> str:
        return self.runs.new_id()

    def write_run(self, run_id: str, record: dict[str, Any]) -> None:
        self.runs.write(run_id, record)

    def read_run(self, run_id: str) -> dict[str, Any]:
        return self.runs.read(run_id)

    def list_runs(self) -> list[str]:
        return self.runs.ids()

    def list_steps(self, run_id: str) -> list[str]:
        return self.stored.list_steps(run_id)

    def list_tasks(self, run_id: str, step: str) -> list[str]:
        return self.stored.list_tasks(run_id, step)

    def task_id_spans(self, run_id: str, step: str) -> list[tuple[int, int]]:
        return self.stored.task_id_spans(run_id, step)

    # -- task records (this store's, or a batch's) --------------------------------------------

    def claim_attempt(self, run_id: str, step: str, task_id: str,
                      record: dict[str, Any]) -> int:
        return self.records.claim_attempt(run_id, step, task_id, record)

    def claim_first(self, run_id: str, step: str, task_id: str,
                    record: dict[str, Any]) -> bool:
        return self.records.claim_first(run_id, step, task_id, record)

    def write_log(self, run_id: str, step: str, task_id: str, attempt: int,
                  stream: str, text: str) -> None:
        self.records.write_log(run_id, step, task_id, attempt, stream, text)

    def write_done(self, run_id: str, step: str, task_id: str, attempt: int,
                   record: dict[str, Any]) -> None:
        self.records.write_done(run_id, step, task_id, attempt, record)

    def list_attempts(self, run_id: str, step: str, task_id: str) -> list[int]:
        return self.records.list_attempts(run_id, step, task_id)

    def read_start(self, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        return self.records.read_start(run_id, step, task_id, attempt)

    def read_done(self, run_id: str, step: str, task_id: str,
                  attempt: int) -> dict[str, Any] | None:
        return self.records.read_done(run_id, step, task_id, attempt)

    def read_log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        return self.records.read_log(run_id, step, task_id, attempt, stream)

    def write_reused(self, run_id: str, step: str, entries: list[dict[str, Any]],
                     common: dict[str, Any] | None = None) -> None:
        """The records of tasks of ``step`` taken as finished instead of run (``@cache``'s
        hits, ``resume``'s clones), each a batch entry (``task_id``, ``attempt``,
        ``start``, ``done``, and ``stdout``/``stderr`` where not empty; without
        ``common``, what they all share, where the caller made them so), written
        together as batch objects, so reusing a wide step costs a few writes: one object
        per stretch of consecutive task ids (a thousand at most).  An object's name is
        the range of ids it holds, so the record of a split that ran between two
        stretches is looked up without reading theirs (a join reads it as the split
        finishes)."""
        for stretch in _stretches(sorted(entries, key=lambda e: int(e["task_id"])),
                                  REUSED_PER_OBJECT):
            self.stored.write_batch(run_id, step, stretch, common)

    # -- files kept with a task, and foreach items ----------------------------------------------

    def write_task_file(self, run_id: str, step: str, task_id: str, name: str,
                        data: bytes) -> str:
        """Keep a file named by ``layout.py`` with a task; return how a record names it."""
        return self.stored.write_task_file(run_id, step, task_id, name, data)

    def read_task_file(self, run_id: str, step: str, task_id: str, name: str) -> bytes:
        return self.stored.read_task_file(run_id, step, task_id, name)

    def write_foreach_items(self, run_id: str, step: str, task_id: str, attempt: int,
                            items: list[Any], var: str, digests: bool = False) -> None:
        self.foreach.write(run_id, step, task_id, attempt, items, var, digests)

    def read_foreach_item(self, run_id: str, step: str, task_id: str, attempt: int,
                          index: int) -> Any:
        return self.foreach.read(run_id, step, task_id, attempt, index)

    def iter_foreach_items(self, run_id: str, step: str, task_id: str,
                           attempt: int) -> Iterator[Any]:
        return self.foreach.iterate(run_id, step, task_id, attempt)

    # -- housekeeping ---------------------------------------------------------------------------

    def remove_orphaned_temp_files(self, older_than: float | str | None = None) -> list[str]:
        """Remove the temporary files that writers killed mid-write left in this flow's
        folder (``_data/.tmp-*``, ``*.tmp-*``); return their paths.

        Only what nobody has written to for ``older_than`` (seconds, or a duration
        such as ``"1 hour"``; default ``daskflow.datastore.orphan-age``) goes, so the
        writes of runs still going on are left alone.  Object stores write whole
        objects and hold no temporary files of ours: nothing to do there.

        >>> store.remove_orphaned_temp_files()                 # doctest: +SKIP
        ['.../HelloFlow/_data/.tmp-5f0c...']
        """
        seconds = orphan_age(older_than)
        if seconds is None:
            return []
        return self.files.remove_stale_temps(self.layout.flow, seconds)


def orphan_age(older_than: float | str | None = None) -> float | None:
    """Seconds after which a temporary file counts as orphaned (``older_than``, else
    ``daskflow.datastore.orphan-age``); None: never."""
    from .. import config

    setting = config.get("datastore.orphan-age", override_with=older_than)
    if setting is None:
        return None
    try:
        return parse_timedelta(setting, default="seconds")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"daskflow.datastore.orphan-age is {setting!r}: give a duration such as "
            f"'1 hour' or a number of seconds (null: never remove).") from exc


#: an artifact stored bigger than this is never read ahead: a reader holds up to
#: ``read-ahead`` of them at once, and reads such a one when it gets there
READ_AHEAD_LARGEST = 32 << 20


def worth_reading_ahead(ref: ArtifactRef) -> bool:
    """Whether the artifact of ``ref`` is small enough to read before it is asked for, and
    not in the ref itself (an inline value: decoding it in a thread costs more than it
    saves, 5,000 trivial inputs of a join about 50 ms)."""
    return ref.inline is None and (ref.size or 0) <= READ_AHEAD_LARGEST


def check_settings() -> None:
    """Refuse a bad datastore setting read only where it is used (a join's read-ahead,
    a claim on a worker), before a run starts."""
    read_ahead_setting()
    exclusive_create_setting()


def read_ahead_setting() -> int:
    """``daskflow.datastore.read-ahead``: how many inputs of a join, or tasks of a step
    the client reads, are read ahead on an object store (0: none)."""
    from .. import config

    setting = config.get("datastore.read-ahead")
    try:
        depth = int(setting or 0)
    except (ValueError, TypeError):
        depth = -1
    if depth < 0 or isinstance(setting, float) and setting != depth:
        raise ConfigurationError(
            f"daskflow.datastore.read-ahead is {setting!r}: give a whole number of inputs "
            f"to read ahead on an object store, such as 8 (0: never).")
    return depth


def resolve_root(root: str | None = None) -> str:
    """The datastore root to use: ``root``, else ``daskflow.datastore.root``.

    A relative folder is looked up in the working directory and its parents (as
    Metaflow finds ``.metaflow``), and created in the working directory when
    none exists.  URLs and absolute paths are used as they are.
    """
    from .. import config

    chosen = str(config.get("datastore.root", override_with=root))
    if "://" in chosen or os.path.isabs(chosen):
        return chosen
    here = os.getcwd()
    while True:
        candidate = os.path.join(here, chosen)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return os.path.join(os.getcwd(), chosen)
        here = parent


#: the records of tasks reused at once: at most this many to a batch object
REUSED_PER_OBJECT = 1000


def _stretches(entries: list[dict[str, Any]], most: int) -> Iterator[list[dict[str, Any]]]:
    """``entries`` (sorted by task id) cut where an id is missing, and every ``most``."""
    stretch: list[dict[str, Any]] = []
    for task in entries:
        if stretch and (len(stretch) == most
                        or int(task["task_id"]) != int(stretch[-1]["task_id"]) + 1):
            yield stretch
            stretch = []
        stretch.append(task)
    if stretch:
        yield stretch
