"""Flows run end to end as a user runs them; results are read back with the client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from daskflow import Flow, Run, namespace

from .conftest import FLOWS


def test_linear_flow_with_parameters_and_current(run_flow, workdir):
    (workdir / "notes.txt").write_text("remember the milk")
    result = run_flow("linear_params.py", "run", "--alpha", "2", "--count", "7",
                      "--name", "Ada", "--verbose", "--config", '{"depth": 5}',
                      "--notes", "notes.txt", "--tag", "exp1", "--tag", "nightly")
    assert result.returncode == 0, result.stderr
    run = Flow("LinearFlow").latest_run
    assert run.successful and run.finished
    assert run.data.summary == {"alpha": 2.0, "count": 7, "name": "Ada", "verbose": True,
                                "config": {"depth": 5}, "notes": "remember the milk",
                                "scaled": [2.0, 4.0, 14.0]}
    assert run.data.alpha == 2.0  # parameters are artifacts of every task
    assert {"exp1", "nightly"} <= run.tags
    seen = run["start"].task.data.seen
    assert seen["flow"] == "LinearFlow" and seen["run"] == run.id
    assert seen["step"] == "start" and seen["retry"] == 0 and seen["running"] is True
    assert seen["pathspec"] == f"LinearFlow/{run.id}/start/{seen['task']}"
    assert seen["tags"] == ["exp1", "nightly"]
    # Output is stored per task and streamed to the terminal with the pathspec.
    start = run["start"].task
    assert start.stdout == "hello Ada\n"
    assert run["middle"].task.stderr == "to stderr too\n"
    assert f"[{run.id}/start/{start.id}] hello Ada" in result.stdout
    assert f"[{run.id}/middle/" in result.stderr


def test_parameter_defaults_and_read_only(run_flow, workdir):
    result = run_flow("linear_params.py", "run")
    assert result.returncode == 0, result.stderr
    summary = Flow("LinearFlow").latest_run.data.summary
    assert summary["alpha"] == 0.5 and summary["count"] == 3 and summary["verbose"] is False
    assert summary["config"] == {"depth": 2} and summary["notes"] is None


def test_branches_run_concurrently_and_join(run_flow, workdir):
    result = run_flow("branches.py", "run", "--nap", "1.5")
    assert result.returncode == 0, result.stderr
    run = Flow("BranchFlow").latest_run
    join = run["join"].task.data
    (a0, a1), (b0, b1) = join.spans
    assert a0 < b1 and b0 < a1, "branches a and b should overlap in time"
    assert join.order == ["a", "b", "c"]
    assert join.from_b == "b"
    assert run.data.result == ("same everywhere", "join")


def test_nested_foreach_with_foreach_stack(run_flow, workdir):
    result = run_flow("nested_foreach.py", "run")
    assert result.returncode == 0, result.stderr
    run = Flow("NestedFlow").latest_run
    outer_join = run["outer_join"].task.data
    assert outer_join.all_labels == ["x0", "x1", "y0", "y1", "z0", "z1"]
    assert outer_join.letters_seen == ["x", "y", "z"]
    stacks = {tuple(s[-1][:2]) for t in run["inner_join"] for s in t.data.stacks}
    assert stacks == {(0, 2), (1, 2)}
    inner = sorted((t.data.label, t.data.stack) for t in run["inner"])
    assert inner[0] == ("x0", [(0, 3, "x"), (0, 2, 0)])
    assert inner[-1] == ("z1", [(2, 3, "z"), (1, 2, 1)])
    assert len(run["inner"]) == 6 and len(run["outer"]) == 3
    assert sorted(t.index for t in run["outer"]) == [0, 1, 2]


@pytest.mark.parametrize("size,path", [("5", "small"), ("50", "big")])
def test_switch_takes_one_path(run_flow, workdir, size, path):
    result = run_flow("switch.py", "run", "--size", size)
    assert result.returncode == 0, result.stderr
    run = Flow("SwitchFlow").latest_run
    assert run.data.final == f"took {path}"
    other = "big" if path == "small" else "small"
    assert other not in run and path in run


def test_merge_artifacts_rules(run_flow, workdir):
    assert run_flow("merge.py", "run").returncode == 0
    data = Flow("MergeFlow").latest_run["join"].task.data
    assert data.diff == "set on self first"       # already set on self: kept
    assert data.common == "same" and data.only_a == "from a"

    assert run_flow("merge.py", "run", "--mode", "conflict").returncode == 0
    data = Flow("MergeFlow").latest_run["join"].task.data
    assert "MergeArtifactsError" in data.merge_error and "['diff']" in data.merge_error
    assert data.common_after_failed_merge is False  # a failed merge sets nothing
    assert data.common == "same" and "diff" not in data

    for mode, message in [("both", "include= or exclude="),
                          ("missing_include", "cannot merge ['nope']")]:
        result = run_flow("merge.py", "run", "--mode", mode)
        assert result.returncode == 1
        assert message in result.stderr
        assert Flow("MergeFlow").latest_run.successful is False


def test_failing_step_is_reported_and_stored(run_flow, workdir):
    result = run_flow("failing.py", "run")
    assert result.returncode == 1
    run = Flow("FailingFlow").latest_run
    task = run["explode"].task
    assert "ValueError: the answer is not 42" in result.stderr
    assert f"task FailingFlow/{run.id}/explode/{task.id} raised ValueError" in result.stderr
    assert 'failing.py", line 15, in explode' in result.stderr  # the user's code, by line
    assert f"logs {run.id}/explode/{task.id}" in result.stderr
    assert not run.successful and not run.finished and run.status == "failed"
    assert task.finished and not task.successful
    assert task.exception.type == "builtins.ValueError"
    assert task.stdout == "about to fail\n"
    assert "partial" not in task.data  # artifacts of a failed task are never visible
    assert run["start"].task.data.before == "kept"
    assert "end" not in run


@pytest.mark.parametrize("args,message", [
    (["--mode", "empty"], "foreach list self.items is empty"),
    (["--mode", "missing"], "foreach='items' but never sets self.items"),
    (["--mode", "scalar"], "needs a list (or a range, or another iterable) to fan out over, "
                           "but self.items is an int (42)"),
    (["--n", "12", "--max-num-splits", "10"],
     "would start 12 tasks, more than --max-num-splits 10"),
])
def test_foreach_runtime_errors(run_flow, workdir, args, message):
    result = run_flow("foreach.py", "run", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "ForeachError" in result.stderr
    assert "Traceback" not in result.stderr   # daskflow's refusal: one line
    assert not Flow("ForeachFlow").latest_run.successful


def test_wide_foreach_and_fast_task_listing(run_flow, workdir):
    result = run_flow("foreach.py", "--quiet", "run", "--n", "1200", "--max-num-splits",
                      "1200")
    assert result.returncode == 0, result.stderr
    run = Flow("ForeachFlow").latest_run
    join = run["join"].task.data
    assert join.total == 2 * sum(range(1200)) and join.count == 1200
    tasks = list(run["work"])
    assert len(tasks) == 1200
    assert sorted(t.data.out for t in tasks) == [2 * i for i in range(1200)]
    assert sorted(t.index for t in tasks) == list(range(1200))


def test_max_workers_bounds_the_local_cluster(run_flow, workdir):
    result = run_flow("foreach.py", "run", "--n", "4", "--max-workers", "1")
    assert result.returncode == 0, result.stderr
    run = Flow("ForeachFlow").latest_run
    assert run.record["clusters"][0]["workers"] == 1
    workers = {t.record["worker"] if "worker" in t.record else None for t in
               Flow("ForeachFlow").latest_run["work"]}
    assert len(workers) == 1


def test_scheduler_address_runs_on_an_existing_cluster(run_flow, workdir, scheduler):
    result = run_flow("foreach.py", "run", "--n", "6", "--scheduler-address", scheduler)
    assert result.returncode == 0, result.stderr
    run = Flow("ForeachFlow").latest_run
    assert run.record["scheduler"] == scheduler
    assert run["join"].task.data.total == 30


def test_unreachable_scheduler_is_a_clear_error(run_flow, workdir):
    result = run_flow("foreach.py", "run", "--scheduler-address", "tcp://127.0.0.1:1")
    assert result.returncode == 1
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_id_file_tags_and_namespaces(run_flow, workdir):
    result = run_flow("switch.py", "run", "--run-id-file", "run.id", "--tag", "a")
    assert result.returncode == 0, result.stderr
    run_id = (workdir / "run.id").read_text()
    first = Run(f"SwitchFlow/{run_id}")
    assert first.successful and "a" in first.user_tags
    assert run_flow("switch.py", "run", "--tag", "b").returncode == 0
    runs = list(Flow("SwitchFlow"))
    assert [r.id for r in runs][1] == run_id           # newest first
    assert [r.id for r in Flow("SwitchFlow").runs("a")] == [run_id]
    assert Flow("SwitchFlow").latest_successful_run.id == runs[0].id
    namespace("user:somebody-else")
    try:
        assert list(Flow("SwitchFlow")) == []
        with pytest.raises(LookupError, match="not in namespace"):
            Run(f"SwitchFlow/{run_id}")
        namespace(None)
        assert len(list(Flow("SwitchFlow"))) == 2
    finally:
        namespace(None)


def test_dump_and_logs_commands(run_flow, workdir):
    assert run_flow("linear_params.py", "run", "--run-id-file", "id").returncode == 0
    run_id = (workdir / "id").read_text()
    dumped = run_flow("linear_params.py", "dump", f"{run_id}/middle")
    assert dumped.returncode == 0, dumped.stderr
    assert "scaled (list): [0.5, 1.0, 1.5]" in dumped.stdout
    assert "alpha (float): 0.5" in dumped.stdout
    logs = run_flow("linear_params.py", "logs", f"{run_id}/start")
    assert logs.stdout == "hello world\n"
    logs = run_flow("linear_params.py", "logs", f"{run_id}/middle", "--no-stdout")
    assert logs.stderr == "to stderr too\n"
    missing = run_flow("linear_params.py", "logs", f"{run_id}/nope")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_show_prints_the_graph_without_running(run_flow, workdir):
    result = run_flow("nested_foreach.py", "show")
    assert result.returncode == 0, result.stderr
    assert "Step outer\n    runs on: the run's default cluster\n" \
        "    => inner  (foreach over self.numbers)" in result.stdout
    assert "Step inner_join  (join of 'outer')" in result.stdout
    switch = run_flow("switch.py", "show").stdout
    assert "=> one of {'big': big, 'small': small}  (switch on self.kind)" in switch
    assert not (workdir / ".daskflow").exists()


def test_run_record_is_plain_json(run_flow, workdir):
    assert run_flow("switch.py", "run").returncode == 0
    run = Flow("SwitchFlow").latest_run
    record = json.loads((workdir / ".daskflow" / "SwitchFlow" / run.id / "_run.json")
                        .read_text())
    assert record["status"] == "success" and record["parameters"] == {"size": "5"}
    assert record["finished_at"] >= record["started_at"]


def test_max_workers_bounds_tasks_on_an_existing_cluster(run_flow, workdir, scheduler):
    result = run_flow("branches.py", "run", "--nap", "1", "--max-workers", "1",
                      "--scheduler-address", scheduler)
    assert result.returncode == 0, result.stderr
    (a0, a1), (b0, b1) = Flow("BranchFlow").latest_run["join"].task.data.spans
    assert a1 <= b0 or b1 <= a0, "with --max-workers 1 the branches must not overlap"


def test_dump_skips_big_values_without_loading_them(run_flow, workdir):
    result = run_flow("big_values.py", "run")
    assert result.returncode == 0, result.stderr
    run_id = Flow("BigValuesFlow").latest_run.id
    flow = str(FLOWS / "big_values.py")
    # VmHWM is this process's own peak: ru_maxrss would carry over the peak of the pytest
    # process that started it (Linux keeps it across the vfork+exec of subprocess).
    measure = ("import runpy, sys\n"
               f"sys.argv = [{flow!r}, 'dump', '{run_id}/start']\n"
               "try:\n"
               f"    runpy.run_path({flow!r}, run_name='__main__')\n"
               "except SystemExit:\n"
               "    pass\n"
               "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
               "print('peak-kib', peak.split()[1])\n")
    dumped = subprocess.run([sys.executable, "-c", measure], cwd=workdir, capture_output=True,
                            text=True, timeout=120)
    out = dumped.stdout
    assert "blob (bytes): 200000" in out and "not shown (over --max-value-size 1000)" in out
    assert "frame (DataFrame): 1000000 rows x 2 columns" in out
    assert "small (list): [1, 2, 3]" in out
    peak_mib = int(out.split("peak-kib")[1]) / 1024
    assert peak_mib < 200, f"dump used {peak_mib:.0f} MiB: it loaded the big value"


def test_a_run_sweeps_old_orphaned_temp_files(run_flow, workdir):
    import os
    import time
    first = run_flow("linear_params.py", "run")
    assert first.returncode == 0, first.stderr
    data = workdir / ".daskflow" / "LinearFlow" / "_data"
    old, new = data / ".tmp-killed-writer", data / ".tmp-writing-now"
    old.write_bytes(b"half a blob")
    new.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    second = run_flow("linear_params.py", "run")
    assert second.returncode == 0, second.stderr
    assert not old.exists() and new.exists()
