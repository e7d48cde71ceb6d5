"""@cache as a user meets it: flows run as subprocesses, twice or more, with the step
bodies that ran counted through a side file and the results read back with the client."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from daskflow import Flow
from daskflow.runtime.events import PlainLog
from daskflow.runtime.progress import RichProgress

FLOWS = Path(__file__).parent.parent / "flows"
WORKS = 20


@pytest.fixture
def cached(workdir, tmp_path):
    """``cached(*args)``: run a copy of tests/flows/cache_flow.py (in the working folder,
    so a test may edit it) with ``--with cache``; returns the process and the bodies that
    ran, as a Counter."""
    flow = workdir / "cache_flow.py"
    shutil.copy(FLOWS / "cache_flow.py", flow)
    counts = tmp_path / "bodies.txt"

    def run(*args: str, command: str = "run") -> tuple[subprocess.CompletedProcess, Counter]:
        counts.write_text("")
        result = subprocess.run(
            [sys.executable, str(flow), command, *args, "--with", "cache"], cwd=workdir,
            capture_output=True, text=True, timeout=240,
            env={**_env(), "CACHE_COUNT_FILE": str(counts)})
        assert result.returncode == 0, result.stdout + result.stderr
        return result, Counter(counts.read_text().split("\n")[:-1])

    run.flow = flow  # type: ignore[attr-defined]
    return run


def _env() -> dict[str, str]:
    import os
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _everything(items=range(WORKS)) -> Counter:
    return Counter(["start", "join", "end", *(f"work {i}" for i in items)])


def test_a_second_run_with_nothing_changed_runs_no_step_and_starts_no_cluster(cached):
    first, ran = cached()
    assert ran == _everything()
    origin = Flow("CacheFlow").latest_run

    again, ran = cached()
    assert ran == Counter()
    run = Flow("CacheFlow").latest_run
    assert run.id != origin.id and run.successful
    assert run.data.result == sum(i * i for i in range(WORKS))
    assert run.record["clusters"] == [] and "Cluster" not in again.stdout
    assert f"reused {WORKS + 3} from the cache (start 1, work {WORKS}, join 1, end 1)." \
        in again.stdout
    end = run["end"].task
    assert end.cached and end.origin_pathspec == origin["end"].task.pathspec
    assert end.stdout == f"result {run.data.result}\n"   # what its origin printed
    assert all(t.cached for t in run["work"])
    assert sorted(t.data.square for t in run["work"]) == [i * i for i in range(WORKS)]
    report = (cached.flow.parent / ".daskflow" / "CacheFlow" / run.id / "_report.html")
    assert f'from the cache: run <a href="../{origin.id}/_report.html">CacheFlow/{origin.id}' \
        f'</a>, not run again' in report.read_text()   # each step's row links its origin
    logs = subprocess.run([sys.executable, str(cached.flow), "logs", f"{run.id}/end"],
                          capture_output=True, text=True, cwd=cached.flow.parent)
    assert logs.stdout == f"result {run.data.result}\n"
    assert f"its output and artifacts come from {origin['end'].task.pathspec}" in logs.stderr


def test_a_changed_item_reruns_start_its_split_the_join_and_end_only(cached):
    cached()
    items = list(range(WORKS))
    items[7] = 70
    _, ran = cached("--items", json.dumps(items))
    assert ran == Counter(["start", "work 70", "join", "end"])
    run = Flow("CacheFlow").latest_run
    assert run.data.result == sum(i * i for i in items)
    assert [t.index for t in run["work"] if not t.cached] == [7]


def test_changing_the_source_of_end_reruns_only_end(cached):
    cached()
    source = cached.flow.read_text()
    cached.flow.write_text(source.replace("self.result = self.total * self.factor",
                                          "self.result = self.total * self.factor + 1"))
    _, ran = cached()
    assert ran == Counter(["end"])
    assert Flow("CacheFlow").latest_run.data.result == sum(i * i for i in range(WORKS)) + 1


def test_a_parameter_only_end_reads_reruns_only_end(cached):
    cached()
    _, ran = cached("--factor", "3")
    assert ran == Counter(["end"])
    assert Flow("CacheFlow").latest_run.data.result == 3 * sum(i * i for i in range(WORKS))
    _, ran = cached("--factor", "3")
    assert ran == Counter()


def test_no_cache_runs_every_step_and_cache_from_takes_one_run_only(cached):
    cached()
    first = Flow("CacheFlow").latest_run
    result, ran = cached("--no-cache")
    assert ran == _everything() and "from the cache" not in result.stdout
    _, ran = cached("--factor", "2")
    assert ran == Counter(["end"])
    # factor 2's end ran only in the run just before: from the first run, end runs again
    _, ran = cached("--factor", "2", "--cache-from", first.id)
    assert ran == Counter(["end"])
    assert {t.origin_pathspec.split("/")[1] for t in Flow("CacheFlow").latest_run["work"]} \
        == {first.id}


def test_cache_from_a_run_that_does_not_exist_is_refused_in_one_line(cached, workdir):
    result = subprocess.run([sys.executable, str(cached.flow), "run", "--cache-from", "123"],
                            capture_output=True, text=True, cwd=workdir)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Run option error: --cache-from 123: Run 'CacheFlow/123' does not "
                           "exist in ") and line.endswith("Name a run of CacheFlow to reuse "
                                                          "results of.")
    assert not (cached.flow.parent / ".daskflow" / "CacheFlow").exists()  # nothing stored


def test_a_reused_task_whose_artifacts_were_deleted_runs_again(cached, workdir):
    cached()
    start = Flow("CacheFlow").latest_run["start"].task
    sha = start.record["artifacts"]["values"][0]
    blob = next((workdir / ".daskflow" / "CacheFlow" / "_data").glob(f"*/{sha}"))
    blob.unlink()
    _, ran = cached()
    assert ran == Counter(["start"])  # it made the same values: the rest is reused
    assert Flow("CacheFlow").latest_run.successful and blob.exists()


def test_resume_takes_the_steps_it_reruns_from_the_cache_unless_told_not_to(cached):
    cached()
    _, ran = cached("work", command="resume")
    assert ran == Counter()   # start cloned; work, join and end unchanged: cached
    run = Flow("CacheFlow").latest_run
    assert run["start"].task.origin_pathspec and not run["start"].task.cached
    assert all(t.cached for t in run["work"])
    _, ran = cached("join", "--no-cache", command="resume")
    assert ran == Counter(["join", "end"])


def test_a_caught_failure_is_never_reused(run_flow):
    failed = run_flow("catch_foreach_flow.py", "run", "--with", "cache",
                      env={"CATCH_FAIL": "2"})
    assert failed.returncode == 0, failed.stderr
    origin = Flow("CatchForeachFlow").latest_run
    assert origin.data.caught == [2]
    again = run_flow("catch_foreach_flow.py", "run", "--with", "cache")
    assert again.returncode == 0, again.stderr
    run = Flow("CatchForeachFlow").latest_run
    assert run.data.caught == [] and run.data.squares == {i: i * i for i in range(8)}
    rerun = {index for index, run_id in run.data.ran_in.items() if run_id == run.id}
    assert rerun == {2}  # the other splits' ran_in is the first run's: they were reused
    # end reads nothing: the same as before, whatever the join made
    assert "finished 2 tasks in" in again.stdout
    assert "reused 9 from the cache (start 1, work 7, end 1)." in again.stdout


def test_concurrent_runs_of_one_cached_flow_do_not_corrupt_each_other(cached, workdir,
                                                                      tmp_path):
    cached()  # a first run, then three at once, each changing a different item
    procs = []
    for n in range(3):
        items = list(range(WORKS))
        items[n] = 100 + n
        procs.append(subprocess.Popen(
            [sys.executable, str(cached.flow), "run", "--with", "cache", "--items",
             json.dumps(items)], cwd=workdir, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**_env(), "CACHE_COUNT_FILE": str(tmp_path / f"bodies-{n}.txt")}))
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
    for n in range(3):  # each of them again: everything from the cache
        items = list(range(WORKS))
        items[n] = 100 + n
        _, ran = cached("--items", json.dumps(items))
        assert ran == Counter()
        assert Flow("CacheFlow").latest_run.data.result == sum(i * i for i in items)


@pytest.mark.fast
def test_the_plain_log_counts_reused_tasks_per_step(capsys):
    log = PlainLog()
    log.run_started(flow_name="F", run_id="1", datastore="/d")
    log.task_finished(step="start", task_id="1", ok=True, foreach_depth=0, cached=True)
    log.foreach_expanded(step="start", target="work", count=2)
    log.task_finished(step="work", task_id="2", ok=True, foreach_depth=1, cached=True)
    log.task_finished(step="work", task_id="3", ok=True, foreach_depth=1)
    log.task_finished(step="end", task_id="4", ok=True, foreach_depth=0)
    log.run_finished(flow_name="F", run_id="1", successful=True, tasks=2, seconds=1.0)
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "Workflow starting (run-id 1): F, datastore /d",
        "Task 1/start/1 reused from the cache (@cache).",
        "Foreach 'start' fans out to 2 tasks of 'work'.",
        "Step 'work': 1/2 tasks finished (1 of them reused from the cache).",
        "Step 'work': 2/2 tasks finished (1 of them reused from the cache).",
        "Task 1/end/4 finished.",
        "Done! Run F/1 finished 2 tasks in 1.0s and reused 2 from the cache (start 1, work 1)."]


@pytest.mark.fast
def test_the_live_view_counts_reused_tasks_per_step():
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=40)
    view = RichProgress(console=console, refresh_per_second=20)
    view.run_started(flow_name="F", run_id="1", datastore="/d")
    view.close()
    view.foreach_expanded(step="start", target="work", count=3)
    for task_id in ("2", "3", "4"):
        view.task_finished(step="work", task_id=task_id, ok=True, foreach_depth=1,
                           cached=task_id != "4")
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(view._render_locked())
    text = buffer.getvalue()
    assert "3 tasks done (2 from the cache)" in text
    [row] = [line for line in text.splitlines() if " work " in line]
    assert "3/3" in row and "2 from the cache" in row
    view.run_finished(flow_name="F", run_id="1", successful=True, tasks=1, seconds=1.0)
    assert "and reused 2 from the cache (work 2)." in console.file.getvalue()


# A second run of the flow in one process, after a first one there (whose imports would
# otherwise be counted): the bytes it reads, from the kernel's count for the process.
_MEASURE = """
import json, sys
from daskflow import Runner

def read_bytes():
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])

Runner(sys.argv[1], with_decorators=["cache"], quiet=True).run()
before = read_bytes()
run = Runner(sys.argv[1], with_decorators=["cache"], quiet=True).run()
print(json.dumps({"read": read_bytes() - before, "run": run.id,
                  "clusters": run.record["clusters"]}))
"""


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/<pid>/io")
def test_a_big_dataframe_is_keyed_without_reading_its_parquet_data(workdir, tmp_path):
    flow = workdir / "cache_frame_flow.py"
    shutil.copy(FLOWS / "cache_frame_flow.py", flow)
    counts = tmp_path / "bodies.txt"
    env = {**_env(), "CACHE_COUNT_FILE": str(counts)}
    first = subprocess.run([sys.executable, str(flow), "run", "--with", "cache"], cwd=workdir,
                           capture_output=True, text=True, timeout=280, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    start = Flow("CacheFrameFlow").latest_run["start"].task
    ref = start.record["artifacts"]["frame"]
    assert ref[1] == "parquet" and ref[3] > 50 * 2**20   # 10 million rows of Parquet
    measured = subprocess.run([sys.executable, "-c", _MEASURE, str(flow)], cwd=workdir,
                              capture_output=True, text=True, timeout=280, env=env)
    assert measured.returncode == 0, measured.stdout + measured.stderr
    found = json.loads(measured.stdout.strip().splitlines()[-1])
    assert counts.read_text() == "total\n"   # the first run's; never again
    assert found["clusters"] == []
    run = Flow("CacheFrameFlow")[found["run"]]
    assert run["total"].task.cached and run.data.sum == sum(range(10_000_000))
    assert found["read"] < ref[3] / 20, found   # its records, never the Parquet file
