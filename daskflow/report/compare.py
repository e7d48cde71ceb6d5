"""Two runs side by side, as plain data: what differs between them, read with the client API.

:func:`compare_runs` reads both runs once (:func:`~daskflow.report.model.collect_run`)
and finds:

- the parameters whose values differ;
- each step's tasks, wall time and worker-seconds (its attempts' seconds) in both;
- the artifacts whose values differ, at the first step (in the flow's order) of one
  task in both runs where they do. The datastore is content-addressed, so two values
  with the same hash are equal without loading either; a differing value is shown
  when small, a DataFrame by its shape, schema and hash (read from the Parquet
  footer, not loaded);
- the flow's files that differ (``code_files`` of each run's record: the files a code
  package takes, with their hashes), and daskflow's version when it changed.

The page is drawn from this data alone (``compare_page.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import RunData, collect_run

SMALL_VALUE = 64 * 1024    # bytes: a differing value at most this big is loaded and shown
SHOWN_CHARS = 200          # of its repr


@dataclass
class Side:
    """One run's value of something compared."""

    text: str
    detail: str = ""       # a frame's schema, a hash


@dataclass
class Difference:
    """Something two runs do not share: its name, where, and each run's side."""

    name: str
    where: str
    a: Side
    b: Side


@dataclass
class StepTimes:
    """A step in both runs: tasks, wall time (first start to last end), worker-seconds."""

    name: str
    a: tuple[int, float | None, float]
    b: tuple[int, float | None, float]


@dataclass
class Comparison:
    flow: str
    a: RunData
    b: RunData
    parameters: list[Difference] = field(default_factory=list)
    same_parameters: int = 0
    steps: list[StepTimes] = field(default_factory=list)
    artifacts: list[Difference] = field(default_factory=list)
    same_artifacts: int = 0
    files: list[Difference] = field(default_factory=list)
    same_files: int = 0
    files_known: bool = True        # both runs recorded their files
    versions: Difference | None = None

    @property
    def count(self) -> int:
        return len(self.parameters) + len(self.artifacts) + len(self.files)


def compare_runs(run_a: Any, run_b: Any, *, graph: Any = None) -> Comparison:
    """What differs between ``run_a`` and ``run_b`` (:class:`~daskflow.client.Run` s of
    one flow).

    >>> comparison = compare_runs(flow["1712"], flow["1713"])     # doctest: +SKIP
    >>> [d.name for d in comparison.parameters]
    ['alpha']
    """
    data_a, data_b = collect_run(run_a, graph), collect_run(run_b, graph)
    found = Comparison(data_a.flow, data_a, data_b)
    found.parameters, found.same_parameters = _parameters(data_a, data_b)
    found.steps = _steps(data_a, data_b)
    found.artifacts, found.same_artifacts = _artifacts(run_a, run_b, data_a, data_b)
    files_a, files_b = data_a.record.get("code_files"), data_b.record.get("code_files")
    found.files_known = files_a is not None and files_b is not None
    if found.files_known:
        found.files, found.same_files = _files(files_a, files_b)
    found.versions = _versions(data_a, data_b)
    return found


def _parameters(a: RunData, b: RunData) -> tuple[list[Difference], int]:
    differ, same = [], 0
    for name in sorted(set(a.parameters) | set(b.parameters)):
        va, vb = a.parameters.get(name), b.parameters.get(name)
        if va == vb:
            same += 1
            continue
        differ.append(Difference(name, "parameter", Side("(none)" if va is None else va),
                                 Side("(none)" if vb is None else vb)))
    return differ, same


def _steps(a: RunData, b: RunData) -> list[StepTimes]:
    def times(run: RunData, name: str) -> tuple[int, float | None, float]:
        summary = run.steps.get(name)
        if summary is None or not summary.attempts:
            return (0, None, 0.0)
        ran = summary.ran
        starts = [x.started_at for x in ran if x.started_at is not None]
        ends = [x.finished_at for x in ran if x.finished_at is not None]
        wall = max(ends) - min(starts) if starts and ends else None
        return (summary.tasks, wall, sum(summary.durations()))

    names = list(a.steps) + [n for n in b.steps if n not in a.steps]
    return [StepTimes(n, times(a, n), times(b, n)) for n in names]


def _artifacts(run_a: Any, run_b: Any, a: RunData,
               b: RunData) -> tuple[list[Difference], int]:
    """Artifacts of each step of one task in both runs; a value that differs is listed
    once, at the first step where it does (later steps carry it along)."""
    differ: list[Difference] = []
    listed: set[tuple[str, str, str]] = set()
    same: set[str] = set()
    for step in a.steps:
        if step not in b.steps or a.steps[step].tasks != 1 or b.steps[step].tasks != 1:
            continue
        try:
            task_a, task_b = run_a[step].task, run_b[step].task
            arts_a = {x.id: x for x in task_a.artifacts}
            arts_b = {x.id: x for x in task_b.artifacts}
        except Exception:  # noqa: BLE001  a step without a finished task: nothing to compare
            continue
        for name in sorted(set(arts_a) | set(arts_b)):
            if name in a.parameters or name in b.parameters:
                continue   # compared as parameters
            x, y = arts_a.get(name), arts_b.get(name)
            if x is not None and y is not None and _same(x, y):
                same.add(name)
                continue
            key = (name, _identity(x), _identity(y))
            if key in listed:
                continue
            listed.add(key)
            same.discard(name)
            differ.append(Difference(name, step, describe(x), describe(y)))
    return differ, len(same - {d.name for d in differ})


def _identity(artifact: Any) -> str:
    return "" if artifact is None else f"{artifact.format}:{artifact.sha}"


def _same(x: Any, y: Any) -> bool:
    """Equal by content hash; a dask DataFrame (stored under a key of its own, not a hash)
    by its manifest: the same rows per partition, bytes and columns."""
    if x.format != y.format:
        return False
    if x.sha == y.sha:
        return True
    if x.format == "dask-parquet":
        manifests = [_manifest(v) for v in (x, y)]
        return manifests[0] is not None and manifests[0] == manifests[1]
    return False


def _manifest(artifact: Any) -> dict[str, Any] | None:
    try:
        manifest = artifact.task._store.artifacts.read_manifest(artifact._ref)
    except Exception:  # noqa: BLE001  unreadable: compared as different
        return None
    return {k: v for k, v in manifest.items() if k != "files"}


def describe(artifact: Any) -> Side:
    """A value as the page shows it: small ones whole, frames by shape, schema and hash."""
    if artifact is None:
        return Side("(none)")
    kind = artifact.type
    if artifact.format in ("parquet", "parquet-series"):
        return _parquet_side(artifact)
    if artifact.format == "dask-parquet":
        manifest = _manifest(artifact) or {}
        rows = manifest.get("rows") or []
        return Side(f"dask {kind}: {sum(rows)} rows in {len(rows)} partitions",
                    f"{manifest.get('bytes', artifact.size)} bytes")
    hash_text = f"{artifact.format} sha {artifact.sha[:12]}"
    if artifact.size > SMALL_VALUE:
        return Side(f"{kind}, {artifact.size} bytes (not loaded)", hash_text)
    try:
        text = repr(artifact.data)
    except Exception as exc:  # noqa: BLE001  a value that no longer loads: say so
        return Side(f"{kind} (cannot be loaded: {type(exc).__name__})", hash_text)
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS] + "..."
    return Side(text, f"{kind}, {hash_text}")


def _parquet_side(artifact: Any) -> Side:
    import pyarrow.parquet as pq

    hash_text = f"sha256 {artifact.sha[:12]}"
    try:
        with artifact.task._store.blobs.open(artifact.sha) as f:
            parquet = pq.ParquetFile(f)
            rows, schema = parquet.metadata.num_rows, parquet.schema_arrow
        columns = [n for n in schema.names if not n.startswith("__")]
        shape = f"{rows} rows x {len(columns)} columns"
        types = ", ".join(f"{n}: {schema.field(n).type}" for n in columns[:12])
        more = f", ... ({len(columns) - 12} more)" if len(columns) > 12 else ""
        return Side(f"{artifact.type}, {shape}", f"{types}{more}; {hash_text}")
    except Exception as exc:  # noqa: BLE001  a footer that cannot be read: the hash still says
        return Side(f"{artifact.type} ({type(exc).__name__} reading it)", hash_text)


def _files(a: dict[str, str], b: dict[str, str]) -> tuple[list[Difference], int]:
    differ, same = [], 0
    for name in sorted(set(a) | set(b)):
        ha, hb = a.get(name), b.get(name)
        if ha == hb:
            same += 1
            continue
        what = "added" if ha is None else "removed" if hb is None else "changed"
        differ.append(Difference(name, what, Side("(absent)" if ha is None else ha),
                                 Side("(absent)" if hb is None else hb)))
    return differ, same


def _versions(a: RunData, b: RunData) -> Difference | None:
    def version(run: RunData) -> str:
        tags = [t for t in run.system_tags if t.startswith("daskflow_version:")]
        return tags[0].split(":", 1)[1] if tags else "?"

    va, vb = version(a), version(b)
    return None if va == vb else Difference("daskflow", "version", Side(va), Side(vb))
