"""The sweep of what dead processes left (runtime/leftovers.py): each kind, in its place,
named by a pid that no process has; those of living processes stay."""

from __future__ import annotations

import os
import tempfile

import dask.config
import pytest

from daskflow.datastore import ArtifactStore
from daskflow.runtime import leftovers
from daskflow.runtime.capture import note_spool
from daskflow.scratch import alive, orphans, owned_prefix, owner

pytestmark = pytest.mark.fast


def _dead_pid() -> int:
    """A pid no process has: the kernel hands out pids below pid_max only."""
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read())


def test_names_carry_their_owner():
    prefix = owned_prefix(".daskflow-tls-")
    assert owner(prefix + "abc", ".daskflow-tls-") == os.getpid()
    assert owner(".daskflow-tls-abc", ".daskflow-tls-") is None  # made before: not ours
    assert alive(os.getpid()) and not alive(_dead_pid())


def test_the_sweep_removes_each_kind_of_a_dead_owner_and_keeps_the_living(
        tmp_path, monkeypatch):
    temp, work, logs = tmp_path / "tmp", tmp_path / "work", tmp_path / "work" / "slurm-logs"
    for folder in (temp, logs):
        folder.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    dead, live = _dead_pid(), os.getpid()
    made = {}
    for folder, prefix, is_dir in [(temp, "daskflow-artifact-", False),
                                   (temp, "daskflow-parallel-map-", True),
                                   (temp, "daskflow-run-", True),
                                   (temp, "daskflow-cell-", True),
                                   (work, ".daskflow-tls-", True),
                                   (logs, ".daskflow-tls-", True)]:
        for pid in (dead, live):
            path = folder / f"{prefix}{pid}-x1y2"
            path.mkdir() if is_dir else path.write_text("x")
            made[path] = pid
    old_style = work / ".daskflow-tls-a1b2c3"  # no owner in its name: never touched
    old_style.mkdir()
    with dask.config.set({"daskflow.cluster.slurm.log-directory": str(logs)}):
        removed = leftovers.sweep()
    assert sorted(removed) == sorted(str(p) for p, pid in made.items() if pid == dead)
    assert all(p.exists() == (pid == live) for p, pid in made.items())
    assert old_style.exists() and orphans(str(temp), "daskflow-artifact-") == []


def test_a_dead_attempts_spool_becomes_its_log_before_it_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    store = ArtifactStore(str(tmp_path / "store"), "SomeFlow")
    attempt = store.claim_attempt("17", "work", "3", {})
    folder = tmp_path / "tmp" / f"daskflow-spool-{os.getuid()}"
    folder.mkdir(parents=True)
    spool = str(folder / f"{_dead_pid()}-abcdef")
    with open(f"{spool}.stdout", "w") as f:
        f.write("printed before the kill\n")
    with open(f"{spool}.fd2", "w") as f:
        f.write("and on fd 2\n")
    note_spool(spool, {"root": store.root_url, "flow": "SomeFlow", "run_id": "17",
                       "step": "work", "task_id": "3", "attempt": attempt})
    mine = str(folder / f"{os.getpid()}-fedcba")  # a task of this process, still running
    with open(f"{mine}.stdout", "w") as f:
        f.write("still going\n")
    assert leftovers.sweep(dry_run=True) == [f"{spool}.fd2", f"{spool}.json",
                                             f"{spool}.stdout"]
    assert len(os.listdir(folder)) == 4  # a dry run removes nothing
    leftovers.sweep()
    assert os.listdir(folder) == [os.path.basename(mine) + ".stdout"]
    assert store.read_log("17", "work", "3", attempt, "stdout") == "printed before the kill\n"
    assert store.read_log("17", "work", "3", attempt, "stderr") == "and on fd 2\nTask failed.\n"
