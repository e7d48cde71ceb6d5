"""A flow on an object store that throttles, drops connections and cuts answers short.

moto's S3 server behind ``proxy.py`` with issue 32's fault mix (conftest's ``FAULT_MIX``:
20% of requests answered ``503 SlowDown``, 5% reset, half of those after the server did
the request, 2% of answers cut in the middle of their body, 5% up to 2 s late). A foreach
of DataFrame and pickled artifacts, its join, the client's read-back, ``logs`` and
``report`` go through it; what the store holds is then checked straight on moto: every
blob's content hashes to its name, every finished task's artifacts are there whole.  A
store that stops answering in the middle of a run ends it with one line naming the store;
``resume``, under the same faults, goes on from what was stored.

The retry policy is conftest's ``QUICK_POLICY`` (daskflow's own layer does the retrying,
with short waits) and the foreach is ``SPLITS`` wide, so the group fits CI; the full size
(2,000 splits, the default policy) is ``bench/flaky_store.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from daskflow import Flow

from .conftest import FlakyStore

pytestmark = [pytest.mark.faults, pytest.mark.aws]

FLOW = Path(__file__).parents[1] / "flows" / "flaky_store_flow.py"
SPLITS = 6


def _flow_module():
    spec = importlib.util.spec_from_file_location("flaky_store_flow", FLOW)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(workdir: Path, store: FlakyStore, root: str, *args: str,
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLOW), "--datastore-root", root, *args],
                          cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **store.env})


def _moto_fs(store: FlakyStore):
    """moto itself, past the proxy: what the store really holds."""
    import s3fs
    return s3fs.S3FileSystem(skip_instance_cache=True, endpoint_url=store.moto,
                             key="testing", secret="testing",
                             client_kwargs={"region_name": "us-east-1"})


def _finished_records(fs, flow: str, step: str = "") -> list[dict]:
    """Every done record in the store (per-task files and batches' entries), or those of
    ``step``."""
    dones = []
    for path in fs.find(flow):
        if step and f"/{step}/" not in path:
            continue
        if path.endswith(".done.json"):
            dones.append(json.loads(fs.cat_file(path)))
        elif "/_batches/" in path:
            batch = json.loads(fs.cat_file(path))
            dones += [{**batch["common"]["done"], **(entry.get("done") or {})}
                      for entry in batch["entries"]]
    return dones


def _check_what_the_store_holds(store: FlakyStore, root: str) -> int:
    """Every blob hashes to its name; every done record's blobs are there, whole."""
    fs = _moto_fs(store)
    flow = f"{root[len('s3://'):]}/FlakyStoreFlow"
    blobs = {p: fs.cat_file(p) for p in fs.find(f"{flow}/_data") if "/dd/" not in p}
    for path, data in blobs.items():
        assert hashlib.sha1(data).hexdigest() == path.rsplit("/", 1)[-1], path
    sizes = {p.rsplit("/", 1)[-1]: len(d) for p, d in blobs.items()}
    checked = 0
    for done in _finished_records(fs, flow):
        for sha, _fmt, _type, size, *inline in done.get("artifacts", {}).values():
            if not inline:
                assert sizes.get(sha) == size, sha
                checked += 1
    return checked


def _check_splits(run, flow, splits: int) -> None:
    tasks = sorted(run["work"], key=lambda t: t.index)
    assert [t.index for t in tasks] == list(range(splits))
    for task in tasks:
        pd.testing.assert_frame_equal(task.data.frame, flow.frame_of(task.index))
        assert task.data.value == flow.value_of(task.index)
    join = run["join"].task.data
    assert join.count == splits and join.squares == sum(i * i for i in range(splits))
    assert join.x_total == pytest.approx(sum(flow.frame_of(i)["x"].sum()
                                             for i in range(splits)))


def test_a_foreach_on_a_flaky_store_reads_back_what_it_wrote(flaky_s3, s3_prefix, workdir):
    done = _run(workdir, flaky_s3, s3_prefix, "run", "--splits", str(SPLITS))
    assert done.returncode == 0, done.stderr[-3000:]

    run = Flow("FlakyStoreFlow").latest_run
    assert run.successful
    _check_splits(run, _flow_module(), SPLITS)
    some = next(t for t in run["work"] if t.index == SPLITS // 2)
    logs = _run(workdir, flaky_s3, s3_prefix, "logs", "/".join([run.id, "work", some.id]))
    assert logs.returncode == 0, logs.stderr[-2000:]
    assert f"split {some.index} stored" in logs.stdout
    report = _run(workdir, flaky_s3, s3_prefix, "report", run.id, "-o",
                  str(workdir / "r.html"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "FlakyStoreFlow" in (workdir / "r.html").read_text()

    assert _check_what_the_store_holds(flaky_s3, s3_prefix) >= 2 * SPLITS
    stats = flaky_s3.stats()  # the faults really happened, each kind
    assert stats["slowdown"] >= 20 and stats["cut"] > 0 and stats["delayed"] > 0, stats
    assert stats["reset-before"] > 0 and stats["reset-after"] > 0, stats


def test_a_store_that_stops_answering_ends_the_run_in_one_line_then_resume_goes_on(
        flaky_s3, s3_prefix, workdir):
    process = subprocess.Popen(
        [sys.executable, str(FLOW), "--datastore-root", s3_prefix, "run", "--splits",
         str(SPLITS), "--pause", "1", "--max-workers", "2"], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **flaky_s3.env})
    fs, flow = _moto_fs(flaky_s3), f"{s3_prefix[len('s3://'):]}/FlakyStoreFlow"
    deadline = time.monotonic() + 180
    while len([d for d in _finished_records(fs, flow, "work") if d.get("status") == "ok"]) < 2:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        fs.invalidate_cache()
        time.sleep(0.2)
    flaky_s3.go_down()
    _, err = process.communicate(timeout=180)
    assert process.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err, err[-3000:]
    assert last.startswith("Run FlakyStoreFlow/") and "failed: the datastore " in last, last
    assert f"the datastore {s3_prefix} stopped answering" in last, last
    assert "Connect" in last or "connect" in last, last  # its last error: refused
    assert "continue the run with: python " in last and " resume --origin-run-id " in last

    flaky_s3.come_back()
    resumed = _run(workdir, flaky_s3, s3_prefix, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = Flow("FlakyStoreFlow").latest_run
    assert run.successful
    _check_splits(run, _flow_module(), SPLITS)
    assert sum(1 for t in run["work"] if t.origin_pathspec) >= 2  # what was stored stays
