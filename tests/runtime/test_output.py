"""Output never takes down a worker, and every way a step writes reaches its log."""

from __future__ import annotations

from daskflow import Flow


def test_awkward_output_reaches_the_log_and_never_hangs_the_run(run_flow, workdir):
    result = run_flow("awkward_output.py", "run", "--max-workers", "1", timeout=180)
    assert result.returncode == 0, result.stderr
    run = Flow("AwkwardOutputFlow").latest_run
    start = run["start"].task
    out = start.stdout
    for line in ("bad ? name", "bytes through buffer", "straight to fd 1",
                 "from a subprocess"):
        assert line in out, out
    assert "straight to fd 2" in start.stderr
    assert "bad ? name" in result.stdout  # echoed live, made valid UTF-8
    assert "the worker still takes tasks" in run["after"].task.stdout
    # an exception whose __str__ raises is still one counted, caught failure
    odd = run["odd"].task
    assert odd.attempts == [0, 1]  # @retry(times=1): the second is caught, as in Metaflow
    assert run["join"].task.data.caught_type == "__main__.BadStr"


def test_a_huge_error_message_is_kept_short(run_flow, workdir):
    result = run_flow("huge_error.py", "run", timeout=180)
    assert result.returncode == 1
    assert len(result.stderr) < 200_000
    run = Flow("HugeErrorFlow").latest_run
    error = run["start"].task.exception
    assert error.exception.startswith("head ") and error.exception.endswith(" tail")
    assert "characters cut" in error.exception and len(error.exception) < 50_000
    folder = workdir / ".daskflow" / "HugeErrorFlow" / run.id
    sizes = {p.name: p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 1_000_000, sizes  # records, logs and the report
