"""``@cache`` on the driver: tasks taken from earlier runs when their keys match.

:class:`TaskCache` is the walk's second kind of :class:`~daskflow.runtime.walk.TaskReuse`
(resume's clones are the first).  When the walk reaches tasks of a cached step whose
parents have finished, it asks for them all at once (a foreach's splits in one call):

1. the step's cache index under its code key is read (one listing, one read per object
   not read yet: a batch of an earlier run is one object, see
   ``datastore/cache_index.py``);
2. each task's key is computed from what the earlier tasks of that code read
   (``runtime/cache_keys.py``), with the hashes the driver already has: its parents'
   refs, the run's parameter refs, the foreach items' digests;
3. a task whose key an earlier successful task has, and whose artifacts are all still
   stored (one existence check per folder, none for values kept in records), is
   recorded as done, with ``origin_pathspec`` naming that task and its artifacts taken
   by reference (nothing copied but a foreach step's list of items), the hits of one
   call written as one batch object.

Keys are computed here on the driver, from what it has, never on a worker: a run whose
every task is a hit starts no cluster.  A task that ran writes its own entry where it
ran (``runtime/task.py``), as its key is known only once it has read what it reads.
A caught failure (``@catch``) never gets an entry, and a gang is never cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..datastore import ArtifactRef, ArtifactStore
from ..exceptions import DaskflowException
from ..graph import FOREACH, FlowGraph
from .cache_keys import ItemDigests, items_digest, key_inputs, task_key
from .context import TaskRef, TaskSpec, parent_names

logger = logging.getLogger(__name__)


class Hit(NamedTuple):
    """A task of this run found in the index: its spec, the entry, its ref in this run."""

    spec: TaskSpec
    entry: dict[str, Any]
    ref: TaskRef

    def made(self) -> list[ArtifactRef]:
        return [ArtifactRef(*ref) for ref in self.entry["own"].values()]


class TaskCache:
    """Finds the tasks of cached steps that earlier runs of the flow already made.

    ``codes``: the code key of each cached step; ``from_run``: take only that run's
    tasks (``--cache-from``), else any run's; ``max_num_splits``: a foreach wider than
    this runs again (and is refused, naming the option), as it would have been.
    """

    source = "cache"
    in_batches = False   # a join's key reads its inputs' refs: each hit goes as its own

    def __init__(self, store: ArtifactStore, graph: FlowGraph, run_id: str,
                 codes: dict[str, str], params: dict[str, ArtifactRef],
                 from_run: str | None = None, max_num_splits: int | None = None) -> None:
        self.store = store
        self.graph = graph
        self.run_id = run_id
        self.codes = codes
        self.params = params
        self.from_run = from_run
        self.max_num_splits = max_num_splits
        self.items = ItemDigests(store, run_id)

    def waits(self) -> frozenset[str]:
        """The steps whose followers are looked up: the walk needs their refs, not the
        keys of tasks still running."""
        return frozenset(node.name for node in self.graph
                         if any(out in self.codes for out in node.out_funcs))

    def reuse(self, specs: Sequence[TaskSpec],
              parents: Sequence[Sequence[Any]]) -> list[TaskRef | None]:
        """The walk's TaskReuse: each of ``specs`` (one step's, each with its parents in
        ``parents``) taken from an earlier run and recorded as done in this one, or None
        to run it."""
        step = specs[0].step
        code = self.codes.get(step)
        if code is None:
            return [None] * len(specs)
        try:
            found = self._still_stored(step, self._hits(step, code, specs, parents))
        except (OSError, ValueError, KeyError, DaskflowException) as exc:
            logger.warning("daskflow: @cache could not look up the tasks of step '%s' "
                           "(%s: %s); they run.", step, type(exc).__name__, exc)
            return [None] * len(specs)
        taken = self._record(step, [(hit, own) for hit, own in zip(found, parents)
                                    if hit is not None])
        return [hit.ref if hit is not None and hit.spec.task_id in taken else None
                for hit in found]

    def _hits(self, step: str, code: str, specs: Sequence[TaskSpec],
              parents: Sequence[Sequence[Any]]) -> list[Hit | None]:
        """Each spec's latest entry with its key, or None."""
        entries = self._entries(step, code)
        if not entries:
            return [None] * len(specs)
        is_join = self.graph[step].is_join
        found: list[Hit | None] = []
        for spec, own in zip(specs, parents):
            inputs = key_inputs(code, self.store, self.run_id, self.params, is_join,
                                own, spec.frames, self.items)
            entry = _match(entries.get(items_digest(spec.frames, self.items), []), inputs)
            found.append(None if entry is None else
                         Hit(spec, entry, self._ref(spec, entry, inputs.own)))
        return found

    def _entries(self, step: str, code: str) -> dict[str, list[dict[str, Any]]]:
        """The index's entries of ``step`` under ``code``, by their items' digest, the
        latest run first."""
        by_items: dict[str, list[dict[str, Any]]] = {}
        for entry in self.store.cache.entries(step, code):
            if self.from_run is None or entry.get("run") == self.from_run:
                by_items.setdefault(entry.get("items") or "", []).append(entry)
        for found in by_items.values():
            found.sort(key=lambda e: int(e.get("run") or 0), reverse=True)
        return by_items

    def _ref(self, spec: TaskSpec, entry: dict[str, Any],
             start: dict[str, ArtifactRef]) -> TaskRef:
        """The task as this run has it: what it made, and what its parent passes on now."""
        made = {name: ArtifactRef(*ref) for name, ref in entry["own"].items()}
        return TaskRef(spec.step, spec.task_id, 0, {**start, **made}, spec.frames,
                       entry.get("num_splits"), entry.get("next_step"))

    def _still_stored(self, step: str, found: list[Hit | None]) -> list[Hit | None]:
        """The hits whose artifacts are all there (a task whose values were deleted runs
        again), as wide as ``--max-num-splits`` allows, and, for a foreach step, whose
        items the cached splits can be keyed by."""
        gone = {ref.sha for ref in self.store.artifacts.missing(
            [ref for hit in found if hit is not None for ref in hit.made()])}
        node = self.graph[step]
        keyed = node.transition == FOREACH and node.out_funcs[0] in self.codes
        return [hit if hit is not None and self._usable(hit, gone, keyed) else None
                for hit in found]

    def _usable(self, hit: Hit, gone: set[str], keyed: bool) -> bool:
        if any(ref.sha in gone for ref in hit.made()):
            return False
        if self.max_num_splits is not None and (hit.ref.num_splits or 0) > self.max_num_splits:
            return False
        entry = hit.entry
        return not keyed or self.store.foreach.digests(
            entry["run"], hit.spec.step, entry["task"], entry["attempt"]) is not None

    def _record(self, step: str, hits: list[tuple[Hit, Sequence[Any]]]) -> set[str]:
        """Record the hits, each with its parents, as done in this run (one batch object
        per thousand); the task ids recorded (a foreach step whose origin's items are
        gone runs again)."""
        if not hits:
            return set()
        now = time.time()
        names: dict[int, list[str]] = {}   # the splits of a foreach share their parents
        records = []
        for (spec, entry, ref), own in hits:
            origin = f"{self.store.flow_name}/{entry['run']}/{step}/{entry['task']}"
            if ref.num_splits is not None and not self.store.foreach.copy(
                    entry["run"], step, entry["task"], entry["attempt"], self.run_id,
                    spec.task_id, 0):  # a foreach step: its splits read its items here
                continue
            start = {"attempt": 0, "started_at": now, "origin_pathspec": origin}
            done = {**start, "finished_at": now, "status": "ok",
                    "frames": [list(f) for f in spec.frames],
                    "parents": names.setdefault(id(own), parent_names(list(own))),
                    "artifacts": {n: r.as_record() for n, r in
                                  {**ref.artifacts, **self.params}.items()},
                    "num_splits": ref.num_splits, "next_step": ref.next_step,
                    "cache_key": entry["key"]}
            records.append({"task_id": spec.task_id, "attempt": 0, "start": start,
                            "done": done})
        self.store.write_reused(self.run_id, step, records)
        return {entry["task_id"] for entry in records}


def _match(entries: list[dict[str, Any]], inputs: Any) -> dict[str, Any] | None:
    """The latest of ``entries`` whose key is the task's, keyed by what each of them read
    (most tasks of a step read the same names: each list of names is keyed once)."""
    keys: dict[tuple[str, ...], str | None] = {}
    for entry in entries:
        reads = entry["reads"]
        if reads not in keys:
            keys[reads] = task_key(inputs, reads)
        if keys[reads] is not None and keys[reads] == entry["key"]:
            return entry
    return None
