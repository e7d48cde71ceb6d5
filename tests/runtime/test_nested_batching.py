"""The inner splits of a nested foreach run in batches, one fan-out per outer split, each
still a task of its own; resume after a failed outer join clones them (issue 31).

Flow files run as subprocesses, read back with the client; the batch objects are looked
at only to check that the splits did share Dask tasks."""

from __future__ import annotations

from pathlib import Path

from daskflow import Flow


def expected(outer_n: int = 3, inner_n: int = 200) -> list[int]:
    return [sum(o * 1000 + i for i in range(inner_n)) for o in range(outer_n)]


def inner_folders(workdir: Path, run_id: str) -> tuple[list[str], int]:
    folder = workdir / ".daskflow" / "NestedBatchFlow" / run_id / "inner"
    return ([p.name for p in folder.iterdir() if p.name != "_batches"],
            len(list((folder / "_batches").glob("*.json"))))


def test_the_inner_splits_of_a_nested_foreach_run_in_batches(run_flow, workdir):
    result = run_flow("nested_batch_flow.py", "run", "--max-num-splits", "200")
    assert result.returncode == 0, result.stderr
    run = Flow("NestedBatchFlow").latest_run
    assert run.data.totals == expected()
    inner = list(run["inner"])
    assert len(inner) == 600
    by_place = {(t.data.o, t.index): t for t in inner}
    assert set(by_place) == {(o, i) for o in range(3) for i in range(200)}
    task = by_place[(2, 117)]
    assert (task.data.v, task.stdout) == (2117, "inner 2/117\n")
    outer = next(t for t in run["outer"] if t.data.o == 2)
    assert list(task.parent_task_pathspecs) == [outer.pathspec]
    alone, objects = inner_folders(workdir, run.id)
    assert objects and len(alone) < 20   # the splits did share Dask tasks
    assert objects < 600 / 4


def test_resume_after_the_outer_join_failed_clones_the_inner_splits(run_flow, workdir):
    failed = run_flow("nested_batch_flow.py", "run", "--max-num-splits", "200",
                      env={"NESTED_FAIL_OUTER_JOIN": "1"})
    assert failed.returncode != 0
    origin = Flow("NestedBatchFlow").latest_run
    result = run_flow("nested_batch_flow.py", "resume", "--max-num-splits", "200")
    assert result.returncode == 0, result.stderr
    run = Flow("NestedBatchFlow").latest_run
    assert run.id != origin.id and run.data.totals == expected()
    inner = list(run["inner"])
    assert len(inner) == 600
    assert all(t.origin_pathspec and t.origin_pathspec.startswith(origin.pathspec + "/inner/")
               for t in inner)
    assert sorted(t.stdout for t in inner)[:1] == ["inner 0/0\n"]
    alone, objects = inner_folders(workdir, run.id)
    assert not alone and 0 < objects < 600 / 4   # the clones written as batch objects
