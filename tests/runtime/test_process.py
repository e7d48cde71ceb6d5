"""The command line's process freezes what a run imports out of Python's collector
(``daskflow/runtime/process.py``); a notebook's or a script's process, which goes on
after its runs, freezes nothing."""

from __future__ import annotations

import pytest

from daskflow.runtime import process


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    monkeypatch.setattr(process.gc, "freeze", lambda: calls.append(True))
    monkeypatch.setattr(process, "_owned", False)
    return calls


@pytest.mark.fast
def test_a_process_that_goes_on_after_its_runs_freezes_nothing(freezes) -> None:
    process.settled()
    assert freezes == []


@pytest.mark.fast
def test_the_command_line_freezes_as_it_starts_and_again_once_the_run_has_settled(
        freezes) -> None:
    with process.command():
        assert freezes == [True]
        process.settled()
        assert freezes == [True, True]


@pytest.mark.fast
def test_a_notebook_that_called_the_command_line_freezes_nothing_after_it(freezes) -> None:
    # MyFlow() in a notebook cell: click's usage error is a SystemExit, which IPython
    # catches; the kernel goes on, and its later runs must not freeze their garbage
    with pytest.raises(SystemExit), process.command():
        raise SystemExit(2)
    process.settled()
    assert freezes == [True]


def test_the_command_lines_driver_freezes_distributed_once_its_cluster_is_open(
        run_flow) -> None:
    result = run_flow("driver_freeze_flow.py", "run", "--max-workers", "1")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("freezes: ")]
    freezes = line.split()[1:]
    # as the command starts (nothing of Dask's imported yet), within the run once its
    # store is made and once its cluster is open, and at exit
    assert freezes[0] == "outside", freezes
    assert "run+distributed" in freezes, freezes
    assert freezes[-1] == "outside+distributed", freezes
    assert "s3fs" not in line  # a local folder's run imports no filesystem module
