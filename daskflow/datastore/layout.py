"""Where every file of the datastore goes: each name defined once, each path built here.

Nothing outside ``datastore/`` builds a path in the datastore, and the rest of the
datastore takes every name and path from here (``files.py`` adds only the temporary
names of writes in progress beside their targets), so the layout below is all there
is (``docs/storage.md`` describes each kind of file)::

    <root>/.probe-<hex>                               for a moment: do workers see this disk?
    <root>/<Flow>/
        _data/<sha[:2]>/<sha>                         an artifact's blob, content-addressed
        _data/dd/<uuid>/part.000000.parquet, ...      a dask DataFrame artifact, one file
                       /_daskflow.json                per partition; its manifest, last
        _code/<sha256>.tar.gz                         a code package, once per content
        _cache/<step>/<code>/<stamp>-<uid>.json       cache index: tasks of a step that ran
                                                      with code key <code>, written whole
        _index.html                                   the page of its latest runs
        _compare/<run_a>-vs-<run_b>.html              two runs side by side
        <run_id>/_run.json                            the run's record
        <run_id>/_report.html                         the run report kept with the run
        <run_id>/<step>/_batches/<first>-<last>.<uid>.json
                                                      the records of a batch of splits
        <run_id>/<step>/<task_id>/
            <attempt>.start.json                      claimed when the attempt starts
            <attempt>.stdout, <attempt>.stderr        its captured output
            <attempt>.foreach                         a foreach step's items
            <attempt>.performance.html                a Dask performance report
            <attempt>.cards.json                      the index of its cards
            <attempt>.card-<n>.html                   card n, a whole page
            <attempt>.done.json                       written last: status and artifacts

Names that start with ``_`` are never a run, step or task; a name holding
:data:`TEMP_MARK` is a write in progress.  A flow name, run id, step name and task
id reach a path only once ``names.py`` has checked them.

>>> layout = Layout("/data/.daskflow", "HelloFlow")
>>> layout.done("17", "start", "1", 0)
'/data/.daskflow/HelloFlow/17/start/1/0.done.json'
"""

from __future__ import annotations

import posixpath
import re
import time
import uuid

from ..exceptions import InvalidNameError
from .names import check_flow_name, check_run_id, check_step_name, check_task_id

# -- names ----------------------------------------------------------------------------

DATA = "_data"                 # a flow's artifacts
DASK_FRAMES = "dd"             # under DATA: one folder per dask DataFrame artifact
MANIFEST = "_daskflow.json"    # in such a folder, written last
CODE = "_code"                 # a flow's code packages
RUN_RECORD = "_run.json"       # in a run's folder
REPORT = "_report.html"        # in a run's folder; "_" keeps it out of the step list
INDEX = "_index.html"          # in a flow's folder: its latest runs, linking their reports
COMPARE = "_compare"           # in a flow's folder: pages of two runs side by side
BATCHES = "_batches"           # in a step's folder
CACHE = "_cache"               # a flow's cache index (``cache_index.py``)
TEMP_MARK = ".tmp-"            # in the name of every temporary file or folder
PROBE_MARK = ".probe-"         # a root's file that workers look for, for a moment

_START = re.compile(r"([0-9]+)\.start\.json")
_BATCH = re.compile(r"([0-9]+)-([0-9]+)(\.[^/]*)?\.json")
_CACHE_OBJECT = re.compile(r"[0-9]+-[0-9a-f]+\.json")
_CODE_KEY = re.compile(r"[0-9a-f]{16,64}")


def start_file(attempt: int) -> str:
    return f"{attempt}.start.json"


def done_file(attempt: int) -> str:
    return f"{attempt}.done.json"


def log_file(attempt: int, stream: str) -> str:
    """A task's captured output: ``stream`` is ``stdout`` or ``stderr``."""
    return f"{attempt}.{stream}"


def foreach_file(attempt: int) -> str:
    return f"{attempt}.foreach"


def performance_file(attempt: int) -> str:
    return f"{attempt}.performance.html"


def card_index_file(attempt: int) -> str:
    return f"{attempt}.cards.json"


def card_page_file(attempt: int, position: int) -> str:
    return f"{attempt}.card-{position}.html"


def partition_file(i: int) -> str:
    """A dask artifact's partition file: zero-padded, so names sort in partition order."""
    return f"part.{i:06d}.parquet"


def code_key(sha: str) -> str:
    """A code package's key, relative to its flow's folder (what a run's record keeps)."""
    return f"{CODE}/{sha}.tar.gz"


def new_dask_key() -> str:
    """The key of a new dask DataFrame artifact (its folder under ``_data``)."""
    return f"{DASK_FRAMES}/{uuid.uuid4().hex}"


def probe_file() -> str:
    """A new name for a file in a datastore root that tells whether workers see it."""
    return f"{PROBE_MARK}{uuid.uuid4().hex}"


def attempt_of_start(name: str) -> int | None:
    """The attempt a task folder's file claims (``3.start.json`` -> 3), else None."""
    found = _START.fullmatch(name)
    return int(found.group(1)) if found else None


def batch_object(task_ids: list[str]) -> str:
    """A new batch object's name: the range of task ids it holds, and a unique suffix."""
    ids = sorted(int(t) for t in task_ids)
    return f"{ids[0]}-{ids[-1]}.{uuid.uuid4().hex[:8]}.json"


def batch_range(name: str) -> tuple[int, int] | None:
    """``(first, last)`` of a batch object's name; None for a name that is not one."""
    found = _BATCH.fullmatch(name)
    return (int(found.group(1)), int(found.group(2))) if found else None


def cache_object() -> str:
    """A new cache index object's name: when it was written (ns), and a unique suffix.
    Objects are never rewritten, so concurrent runs never touch each other's."""
    return f"{time.time_ns()}-{uuid.uuid4().hex[:12]}.json"


def is_cache_object(name: str) -> bool:
    return _CACHE_OBJECT.fullmatch(name) is not None


def in_run(step: str, task_id: str, name: str) -> str:
    """A task's file relative to its run's folder, as a task's record names it."""
    return f"{check_step_name(step)}/{check_task_id(task_id)}/{name}"


# -- paths ----------------------------------------------------------------------------


class Layout:
    """The paths of one flow's files under a datastore's base path (no protocol)."""

    def __init__(self, base: str, flow_name: str) -> None:
        self.flow = f"{base.rstrip('/')}/{check_flow_name(flow_name)}"
        self.data = f"{self.flow}/{DATA}"

    def blob(self, key: str) -> str:
        """An artifact's blob (``key`` its sha1), or the folder of a key like ``dd/<uuid>``."""
        if "/" in key:
            head, _, name = key.partition("/")
            if head != DASK_FRAMES or not name.isalnum():
                raise InvalidNameError(f"Artifact key {key!r} is not one the datastore makes.")
            return f"{self.data}/{key}"
        if not key.isalnum():
            raise InvalidNameError(f"Artifact key {key!r} is not one the datastore makes.")
        return f"{self.data}/{key[:2]}/{key}"

    def frame_file(self, key: str, name: str) -> str:
        """A file of a dask artifact's folder (a partition, or :data:`MANIFEST`)."""
        return f"{self.blob(key)}/{name}"

    def code(self, key: str) -> str:
        """A code package, by the key a run's record keeps (see :func:`code_key`)."""
        if not key.startswith(f"{CODE}/") or ".." in key or key.count("/") != 1:
            raise InvalidNameError(f"Code package key {key!r} is not one the datastore "
                                   f"makes ({code_key('<sha256>')}).")
        return f"{self.flow}/{key}"

    def cache_folder(self, step: str, code: str) -> str:
        """The cache index of ``step`` for one code key (hex, see ``runtime/cache_keys.py``)."""
        if not _CODE_KEY.fullmatch(code):
            raise InvalidNameError(f"Cache code key {code!r} is not one daskflow makes.")
        return f"{self.flow}/{CACHE}/{check_step_name(step)}/{code}"

    def cache_object(self, step: str, code: str, name: str) -> str:
        """An object of that index, by its name (see :func:`cache_object`)."""
        if not is_cache_object(name):
            raise InvalidNameError(f"{name!r} is not the name of a cache index object.")
        return f"{self.cache_folder(step, code)}/{name}"

    def run(self, run_id: str) -> str:
        return f"{self.flow}/{check_run_id(run_id)}"

    def run_record(self, run_id: str) -> str:
        return f"{self.run(run_id)}/{RUN_RECORD}"

    def report(self, run_id: str) -> str:
        return f"{self.run(run_id)}/{REPORT}"

    def index(self) -> str:
        return f"{self.flow}/{INDEX}"

    def comparison(self, run_a: str, run_b: str) -> str:
        return f"{self.flow}/{COMPARE}/{check_run_id(run_a)}-vs-{check_run_id(run_b)}.html"

    def in_run(self, run_id: str, relative: str) -> str:
        """A file a task's record names relative to its run's folder (see :func:`in_run`)."""
        parts = relative.split("/")
        if relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidNameError(f"{relative!r} is not a file of run {run_id}.")
        return f"{self.run(run_id)}/{relative}"

    def step(self, run_id: str, step: str) -> str:
        return f"{self.run(run_id)}/{check_step_name(step)}"

    def batches(self, run_id: str, step: str) -> str:
        return f"{self.step(run_id, step)}/{BATCHES}"

    def batch(self, run_id: str, step: str, name: str) -> str:
        """A batch object, by its name (see :func:`batch_object`)."""
        if batch_range(name) is None:
            raise InvalidNameError(f"{name!r} is not the name of a batch object.")
        return f"{self.batches(run_id, step)}/{name}"

    def task(self, run_id: str, step: str, task_id: str) -> str:
        return f"{self.step(run_id, step)}/{check_task_id(task_id)}"

    def task_file(self, run_id: str, step: str, task_id: str, name: str) -> str:
        """A file in a task's folder; ``name`` is one of the ``*_file`` names above."""
        if posixpath.basename(name) != name or name in ("", ".", ".."):
            raise InvalidNameError(f"{name!r} is not a file name of a task's folder.")
        return f"{self.task(run_id, step, task_id)}/{name}"

    def start(self, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return self.task_file(run_id, step, task_id, start_file(attempt))

    def done(self, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return self.task_file(run_id, step, task_id, done_file(attempt))

    def log(self, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        return self.task_file(run_id, step, task_id, log_file(attempt, stream))

    def foreach(self, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return self.task_file(run_id, step, task_id, foreach_file(attempt))
