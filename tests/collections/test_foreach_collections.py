"""foreach over a Dask collection: one split per partition, each loaded where its split runs.

The flow (tests/flows/collection_foreach.py) runs as a user runs it; its partition
functions log which step computed each partition, so the tests see that nothing was
computed in the driver or in the step that fanned out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daskflow import Flow


def _run(run_flow: Any, workdir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_flow("collection_foreach.py", "--quiet", *args,
                    env={"SEEN_LOG": str(workdir / "seen.log"), **(env or {})})


def _seen(workdir: Path) -> list[tuple[int, int, str]]:
    """(first value, pid, step) for every partition computation, in no set order."""
    log = workdir / "seen.log"
    lines = log.read_text().split() if log.exists() else []
    return [(int(lines[i]), int(lines[i + 1]), lines[i + 2]) for i in range(0, len(lines), 3)]


def _splits(run: Any) -> list[Any]:
    return sorted(run["per_part"], key=lambda t: t.index)


@pytest.mark.parametrize("kind,parts,shapes,computed", [
    ("bag", [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]], [[3], [3], [3], [1]], 4),
    ("array", [list(range(0, 6)), list(range(6, 12)), list(range(12, 18)), [18, 19]],
     [[6], [6], [6], [2]], 4),
    # 10 x 4 in (4, 2) chunks: three bands of rows, each band's two blocks joined.
    ("array2d", [list(range(0, 16)), list(range(16, 32)), list(range(32, 40))],
     [[4, 4], [4, 4], [2, 4]], 6),
])
def test_graph_collections_split_per_partition_computed_in_the_split(
        run_flow: Any, workdir: Path, kind: str, parts: list[list[int]],
        shapes: list[list[int]], computed: int) -> None:
    result = _run(run_flow, workdir, "run", "--kind", kind)
    assert result.returncode == 0, result.stderr
    run = Flow("CollectionForeachFlow").latest_run
    assert run["join"].task.data.parts == parts
    splits = _splits(run)
    assert [t.index for t in splits] == list(range(len(parts)))
    assert [t.data.shape for t in splits] == shapes
    assert {t.data.part_type for t in splits} == {"list" if kind == "bag" else "ndarray"}
    assert [t.data.stack for t in splits] == [[(i, len(parts))] for i in range(len(parts))]
    # Every partition (every block of a band) computed once, inside a split's task,
    # in the process of the split that got it.
    seen = _seen(workdir)
    assert len(seen) == computed
    assert {step for _, _, step in seen} == {"per_part"}
    pid_of = {t.data.values[0]: t.data.pid for t in splits}
    for first, pid, _ in seen:
        if first in pid_of:
            assert pid == pid_of[first]


@pytest.mark.parametrize("kind,part_type,width", [("frame", "DataFrame", 2),
                                                  ("series", "Series", 1)])
def test_dataframe_splits_read_the_stored_partitions(run_flow: Any, workdir: Path,
                                                     kind: str, part_type: str,
                                                     width: int) -> None:
    result = _run(run_flow, workdir, "run", "--kind", kind)
    assert result.returncode == 0, result.stderr
    run = Flow("CollectionForeachFlow").latest_run
    splits = _splits(run)
    assert len(splits) == 4
    assert [t.data.part_type for t in splits] == [part_type] * 4
    assert [t.data.shape for t in splits] == [[5, 2]] * 4 if width == 2 else [[5]] * 4
    firsts = [t.data.values[0] for t in splits]
    assert firsts == [0, 5, 10, 15]
    assert splits[1].data.stack_text == "events partition 1"
    # Each partition was computed once, by a worker writing the artifact's Parquet
    # files (no task of the flow: neither start nor a split); the splits read the files.
    seen = _seen(workdir)
    assert sorted(first for first, _, _ in seen) == [0, 5, 10, 15]
    assert {step for _, _, step in seen} == {"None"}
    frame = run["start"].task.data.events.compute()
    assert len(frame) == 20


@pytest.mark.parametrize("kind", ["dataset", "parts"])
def test_read_dataset_and_partitions_fan_out_per_file(run_flow: Any, workdir: Path,
                                                      kind: str) -> None:
    result = _run(run_flow, workdir, "run", "--kind", kind)
    assert result.returncode == 0, result.stderr
    run = Flow("CollectionForeachFlow").latest_run
    parts = run["join"].task.data.parts
    assert len(parts) == 3
    assert [p[0::2] for p in parts] == [list(range(0, 7)), list(range(7, 14)),
                                        list(range(14, 20))]
    assert {t.data.part_type for t in run["per_part"]} == {"DataFrame"}


def test_max_num_splits_counts_partitions(run_flow: Any, workdir: Path) -> None:
    result = _run(run_flow, workdir, "run", "--kind", "bag", "--max-num-splits", "3")
    assert result.returncode == 1
    assert "foreach over self.events would start 4 tasks, more than --max-num-splits 3" \
        in result.stderr
    assert not (workdir / "seen.log").exists()  # refused before anything was computed


def test_resume_reruns_the_failed_partition_only(run_flow: Any, workdir: Path) -> None:
    failed = _run(run_flow, workdir, "run", "--kind", "bag", "--fail", "2")
    assert failed.returncode == 1
    assert "split 2 fails on purpose" in failed.stderr
    # partitions 0, 1 and 3 were computed by their splits (the failing split fails after
    # them; its own partition may have been read ahead of its failure)
    before = _seen(workdir)
    assert {first for first, _, _ in before} >= {0, 3, 9}
    resumed = _run(run_flow, workdir, "resume",
                   env={"NO_FAIL": "1"})
    assert resumed.returncode == 0, resumed.stderr
    run = Flow("CollectionForeachFlow").latest_run
    assert run.successful
    assert run["join"].task.data.parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    cloned = {t.index for t in run["per_part"] if t.origin_pathspec}
    assert cloned == {0, 1, 3}
    assert [first for first, _, _ in _seen(workdir)[len(before):]] == [6]  # the resume's
