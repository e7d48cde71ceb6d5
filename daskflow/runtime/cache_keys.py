"""The keys of cached steps (``@cache``): what a task's result depends on, as one hash.

A task's key has two parts:

- its step's *code key*, made once per run on the driver (:func:`code_keys`): the
  step's source, the source of the functions, classes and constants of the flow file
  it names, a hash of the other files the code package takes from the flow's folder,
  its decorators' options (``@environment`` values; secrets by name and reference,
  never their values), ``@cache(version=...)``, and the driver's Python minor and
  versions of daskflow, dask, pandas, numpy and pyarrow;
- the content hashes of what the task *read* (:func:`task_key`): the names it read
  (recorded by the lazy loader, :mod:`daskflow.inputs`) looked up in its parents'
  artifact refs, the run's parameter refs and its join's inputs, plus the digest of its
  foreach item(s).  Every one of these is a hash the datastore already has (an
  ArtifactRef's ``sha``, an item's digest kept beside the items): no value is loaded,
  no data hashed.

The worker computes a task's key once it has run, from the names it read then; the
driver computes it before the next run of that code, from the names those earlier
tasks read (the cache index keeps them), with the same function and the same refs, so
both agree without the driver loading anything or starting a cluster.

>>> task_key(KeyInputs(code, own={}, params=params), reads={"p:alpha"})  # doctest: +SKIP
'5f0c...'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import os
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..datastore import ArtifactRef
from ..graph import FlowGraph
from ..inputs import ForeachFrame
from ..steps import StepPlan

KEY_VERSION = "daskflow-cache-1"     # changes when the way keys are made changes
VERSIONED = ("dask", "pandas", "numpy", "pyarrow")
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
MISSING = "-"                        # the digest of a name that was not there


# -- code keys, on the driver ------------------------------------------------------------

def environment_fingerprint() -> str:
    """Python's minor version and the versions of daskflow and the data packages."""
    from .. import __version__
    parts = [f"python={sys.version_info[0]}.{sys.version_info[1]}", f"daskflow={__version__}"]
    for name in VERSIONED:
        try:
            parts.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name}=none")
    return ";".join(parts)


def other_files_digest(flow_file: str | None) -> str:
    """A hash of the files the code package takes from the flow's folder, the flow file
    left out (its steps count one by one); "" for a flow with no file (a notebook's)."""
    if not flow_file or not os.path.isfile(flow_file):
        return ""
    from ..remote.codepackage import folder_files
    flow_file = os.path.abspath(flow_file)
    digest = hashlib.sha256()
    for name, path in sorted(folder_files(flow_file).items()):
        if os.path.abspath(path) == flow_file:
            continue
        with open(path, "rb") as f:
            digest.update(f"{name}\0".encode() + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def code_keys(flow_cls: type, graph: FlowGraph, plans: dict[str, StepPlan],
              flow_file: str | None) -> dict[str, str]:
    """The code key of every cached step (a gang is never cached)."""
    cached = [name for name, plan in plans.items()
              if plan.cache is not None and not graph.is_gang(name)]
    if not cached:
        return {}
    shared = f"{KEY_VERSION}\n{environment_fingerprint()}\n{other_files_digest(flow_file)}"
    constants = _constants(flow_cls)
    keys = {}
    for name in cached:
        plan, node = plans[name], graph[name]
        func = getattr(flow_cls, name)
        # start and joins store every class constant; other steps see those they name
        named = constants if name == "start" or node.is_join else \
            {k: v for k, v in constants.items() if k in _names_used(func)}
        digest = hashlib.sha256(shared.encode())
        for part in (_source(func), *_helpers(flow_cls, func),
                     *(f"const {k}={v}" for k, v in sorted(named.items())),
                     *(repr(d) for d in plan.decorators), f"version={plan.cache}"):
            digest.update(b"\0" + part.encode())
        keys[name] = digest.hexdigest()
    return keys


def _source(value: Any) -> str:
    """A function's or class's source (dedented); where Python has none, its compiled
    code (a class: its name)."""
    value = inspect.unwrap(value)
    try:
        return textwrap.dedent(inspect.getsource(value))
    except (OSError, TypeError):
        code = getattr(value, "__code__", None)
        return _code_text(code) if code is not None else f"<{value.__qualname__}>"


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c)
              for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


def _names_used(func: Any) -> set[str]:
    """Every global and attribute name the function's code (and code nested in it) uses."""
    names: set[str] = set()
    todo = [inspect.unwrap(func).__code__]
    while todo:
        code = todo.pop()
        names.update(code.co_names)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def _helpers(flow_cls: type, func: Any) -> Iterator[str]:
    """The source of the flow file's functions and classes the step names (and that they
    name, on and on), of its other methods, and the values of its plain globals."""
    module = inspect.unwrap(func).__module__
    seen: set[str] = set()
    todo = [func]
    while todo:
        for name in sorted(_names_used(todo.pop()) - seen):
            seen.add(name)
            value = getattr(flow_cls, name, None)
            if not _own_code(value, module) or getattr(value, "is_step", False):
                value = inspect.unwrap(func).__globals__.get(name)
            if _own_code(value, module) and not getattr(value, "is_step", False):
                yield f"def {name}: {_source(value)}"
                if callable(value) and not isinstance(value, type):
                    todo.append(value)
            elif isinstance(value, _PLAIN) or _plain_tuple(value):
                yield f"global {name}={value!r}"


def _own_code(value: Any, module: str) -> bool:
    """A function or class defined in the flow's own file (module)."""
    return isinstance(value, (types.FunctionType, type)) \
        and getattr(value, "__module__", None) == module


def _plain_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, frozenset)) and all(
        isinstance(v, _PLAIN) or _plain_tuple(v) for v in value)


def _constants(flow_cls: type) -> dict[str, str]:
    """The flow's class constants (Metaflow's rule), each as text: repr for plain values,
    a hash of its pickle for the rest."""
    found = {}
    for name in flow_cls._constant_names():  # type: ignore[attr-defined]
        value = getattr(flow_cls, name)
        if isinstance(value, _PLAIN) or _plain_tuple(value):
            found[name] = repr(value)
            continue
        try:
            found[name] = hashlib.sha256(cloudpickle.dumps(value)).hexdigest()
        except Exception:  # noqa: BLE001  the step that stores it says what is wrong
            found[name] = repr(value)
    return found


# -- task keys, on the driver and the worker ---------------------------------------------

@dataclass
class KeyInputs:
    """What a task's key is made from, read by names; the same on the driver before the
    task and on the worker after it.

    ``own``: the artifacts the task starts with (its parent's; a join starts with none).
    ``items``: the digest of a foreach frame's item (None: not kept).  ``inputs``: a
    join's inputs, each as its artifact refs and frames, in order.
    """

    code: str
    own: dict[str, ArtifactRef] = field(default_factory=dict)
    params: dict[str, ArtifactRef] = field(default_factory=dict)
    frames: tuple[ForeachFrame, ...] = ()
    items: Callable[[ForeachFrame], str | None] = lambda frame: None
    inputs: Callable[[], Iterable[tuple[dict[str, ArtifactRef], tuple[Any, ...]]]] = \
        lambda: ()


def items_digest(frames: tuple[ForeachFrame, ...],
                 items: Callable[[ForeachFrame], str | None]) -> str | None:
    """The digests of a task's foreach items, outermost first ("" outside a foreach);
    None when one of them was not kept (the task cannot be keyed)."""
    digests = []
    for frame in frames:
        digest = items(frame)
        if digest is None:
            return None
        digests.append(digest)
    return ",".join(digests)


def task_key(inputs: KeyInputs, reads: Iterable[str]) -> str | None:
    """The key of a task that read ``reads`` (see :mod:`daskflow.inputs` for the names);
    None when it cannot be keyed (an item whose digest was not kept)."""
    items = items_digest(inputs.frames, inputs.items)
    if items is None:
        return None
    digests = read_digests(inputs, reads)
    if digests is None:
        return None
    digest = hashlib.sha256(f"{KEY_VERSION}\n{inputs.code}\nitems={items}".encode())
    for name in sorted(digests):
        digest.update(f"\n{name}={digests[name]}".encode())
    return digest.hexdigest()


def read_digests(inputs: KeyInputs, reads: Iterable[str]) -> dict[str, str] | None:
    """The content hash of each name read (never a value: refs' hashes, positions)."""
    found: dict[str, str] = {}
    joined: list[str] = []
    for name in reads:
        kind, _, what = name.partition(":")
        if kind == "a":
            found[name] = _sha(inputs.own.get(what))
        elif kind == "p":
            found[name] = _sha(inputs.params.get(what))
        elif name == "x":
            found[name] = ";".join(f"{f.index}/{f.num_splits}" for f in inputs.frames)
        elif kind == "j" or name == "jx":
            joined.append(name)
        else:
            raise ValueError(f"unknown kind of read {name!r}")
    if joined:
        over = _over_inputs(inputs, joined)
        if over is None:
            return None
        found.update(over)
    return found


def _over_inputs(inputs: KeyInputs, names: list[str]) -> dict[str, str] | None:
    """One hash per name over every input of a join, in order (one pass over them)."""
    digests = {name: hashlib.sha256() for name in names}
    for refs, frames in inputs.inputs():
        for name, digest in digests.items():
            if name == "jx":
                items = items_digest(tuple(frames), inputs.items)
                if items is None:
                    return None
                place = ";".join(f"{f.index}/{f.num_splits}" for f in frames)
                digest.update(f"{place}|{items}\n".encode())
            else:
                digest.update(f"{_sha(refs.get(name[2:]))}\n".encode())
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _sha(ref: ArtifactRef | None) -> str:
    return MISSING if ref is None else ref.sha


# -- where a task's key reads from: the same on the driver and the worker ----------------

class ItemDigests:
    """The digest of a foreach frame's item, from its foreach step's file.  ``whole``
    (the driver, keying every split): each file's list read once and kept (written once,
    it never changes); else (a task, keying itself): its own digest alone, as a split
    reads its own item."""

    def __init__(self, store: Any, run_id: str, whole: bool = True) -> None:
        self.store = store
        self.run_id = run_id
        self.whole = whole
        self._files: dict[tuple[str, str, int], list[str] | None] = {}

    def __call__(self, frame: ForeachFrame) -> str | None:
        where = (frame.step, frame.task_id, frame.attempt)
        if not self.whole:
            return self.store.foreach.digest(self.run_id, *where, frame.index)
        if where not in self._files:
            self._files[where] = self.store.foreach.digests(self.run_id, *where)
        digests = self._files[where]
        return digests[frame.index] if digests and frame.index < len(digests) else None


def key_inputs(code: str, store: Any, run_id: str, params: dict[str, ArtifactRef],
               is_join: bool, parents: tuple[Any, ...] | list[Any],
               frames: tuple[ForeachFrame, ...], items: ItemDigests) -> KeyInputs:
    """What a task of run ``run_id`` with ``parents`` (refs, or batches of splits for a
    join) is keyed from."""
    from .join_inputs import JoinInputs
    if is_join:
        return KeyInputs(code, {}, params, frames, items,
                         JoinInputs(store, run_id, params, parents).refs)
    own = dict(parents[0].artifacts) if parents else {}
    return KeyInputs(code, own, params, frames, items)


def own_artifacts(start: dict[str, ArtifactRef], made: dict[str, ArtifactRef],
                  assigned: Iterable[str]) -> dict[str, ArtifactRef]:
    """What a task made of its artifacts (``made``): what it assigned, and what it did not
    start with or changed (a join's merged ones); the rest it passed on from ``start``,
    and a task reused later passes on its new parent's instead."""
    assigned = set(assigned)
    return {name: ref for name, ref in made.items()
            if name in assigned or start.get(name) != ref}


def entry_of_run(code: str, store: Any, run_id: str, params: dict[str, ArtifactRef],
                 is_join: bool, frames: tuple[ForeachFrame, ...],
                 parents: tuple[Any, ...], reads: set[str], task_id: str, attempt: int,
                 ref: Any, assigned: Iterable[str]) -> dict[str, Any] | None:
    """On the worker, once a cached task has run: its cache index entry (its key, the
    names it read, what it made), or None when it cannot be keyed."""
    # a join over a foreach reads many items' digests (its inputs'), a split its own
    inputs = key_inputs(code, store, run_id, params, is_join, parents, frames,
                        ItemDigests(store, run_id, whole=is_join))
    key = task_key(inputs, reads)
    if key is None:
        return None
    own = own_artifacts(inputs.own, ref.artifacts, assigned)
    return {"key": key, "reads": sorted(reads), "items": items_digest(frames, inputs.items),
            "run": run_id, "task": task_id, "attempt": attempt,
            "own": {name: r.as_record() for name, r in own.items()},
            "num_splits": ref.num_splits, "next_step": ref.next_step}
