"""parallel_map / parallel_imap_unordered on a real Dask cluster (process workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from dask.utils import parse_bytes

from daskflow.collections import (
    ParallelMapError,
    ParallelMapInputError,
    parallel_imap_unordered,
    parallel_map,
)
from daskflow import config
from daskflow.collections.parallel import engine, errors, partitions, pickling, transport
from daskflow.exceptions import DaskflowException


def _square(x: int) -> int:
    return x * x


def _scheduler_keys(client: Any, prefix: str = "parallel_map-") -> list[str]:
    """parallel_map tasks the scheduler still holds (to run, running or done)."""
    def keys(dask_scheduler: Any) -> list[str]:
        return [str(k) for k, ts in dask_scheduler.tasks.items()
                if str(k).startswith(prefix) and ts.state != "erred"]
    return client.run_on_scheduler(keys)


# -- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    pytest.param(lambda n: range(n), id="range"),
    pytest.param(lambda n: list(range(n)), id="list"),
    pytest.param(lambda n: tuple(range(n)), id="tuple"),
    pytest.param(lambda n: np.arange(n), id="numpy"),
    pytest.param(lambda n: (i for i in range(n)), id="generator"),
    pytest.param(lambda n: set(range(n)), id="set"),
    pytest.param(lambda n: dict.fromkeys(range(n)), id="dict"),
    pytest.param(lambda n: __import__("collections").deque(range(n)), id="deque"),
])
def test_results_come_back_in_input_order(client: Any, make: Any) -> None:
    n = 5000  # longer than the lookahead, so a generator is streamed
    expected = [int(x) * int(x) for x in make(n)]
    assert parallel_map(_square, make(n)) == expected


def test_order_of_shuffled_items_is_kept(client: Any) -> None:
    items = list(range(3000))
    import random
    random.Random(4).shuffle(items)
    assert parallel_map(lambda x: -x, items, batch_size=7) == [-x for x in items]


def test_lambdas_and_closures(client: Any) -> None:
    offset = 10
    table = {i: chr(65 + i % 26) for i in range(26)}

    def lookup(x: int) -> str:
        return table[x % 26] * (x % 3 + 1) + str(offset)

    assert parallel_map(lambda x: x + offset, range(100)) == [x + offset for x in range(100)]
    assert parallel_map(lookup, range(60)) == [lookup(x) for x in range(60)]


def test_a_big_closure_travels_once(client: Any) -> None:
    weights = list(range(200_000))  # ~1 MB pickled: scattered once, not in every task

    def score(i: int) -> int:
        return weights[i] * 2

    limit = parse_bytes(config.get("parallel-map.func-inline-limit"))
    assert len(pickling.pickle_func(score)) > limit
    assert parallel_map(score, range(0, 200_000, 1000)) == [2 * i for i in range(0, 200_000, 1000)]


def test_items_that_need_cloudpickle(client: Any) -> None:
    funcs = [lambda: 1, lambda: 2, lambda: 3]
    assert parallel_map(lambda f: f() * 10, funcs) == [10, 20, 30]


@pytest.mark.parametrize("batch_size", [1, 7, 250, 1000, 5000])
def test_batch_size_sets_the_partitions(client: Any, batch_size: int) -> None:
    from distributed import get_task_stream

    n = 1000
    with get_task_stream(client) as stream:
        result = parallel_map(_square, list(range(n)), batch_size=batch_size)
    assert result == [x * x for x in range(n)]
    tasks = [t for t in stream.data if str(t["key"]).startswith("parallel_map-")]
    assert len(tasks) == -(-n // batch_size)


def test_partitions_are_sized_for_the_cluster(client: Any) -> None:
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        parallel_map(_square, range(1_000_000))
    tasks = [t for t in stream.data if str(t["key"]).startswith("parallel_map-")]
    assert len(tasks) == config.get("parallel-map.min-partitions")  # not a million tasks
    with get_task_stream(client) as stream:
        parallel_map(_square, range(10))
    assert len([t for t in stream.data if str(t["key"]).startswith("parallel_map-")]) == 10



def test_partition_sizes_come_from_the_config(client: Any) -> None:
    from distributed import get_task_stream

    settings = {"daskflow.parallel-map.min-partitions": 10,
                "daskflow.parallel-map.partitions-per-thread": 6}
    with dask.config.set(settings), get_task_stream(client) as stream:
        assert parallel_map(_square, range(100_000)) == [x * x for x in range(100_000)]
    tasks = [t for t in stream.data if str(t["key"]).startswith("parallel_map-")]
    assert len(tasks) == 12  # 6 per thread of the 2 beat the minimum of 10


def test_the_lookahead_comes_from_the_config() -> None:
    with dask.config.set({"daskflow.parallel-map.lookahead": 10}):
        assert partitions.Input.of(x for x in range(10)).length is None  # streamed
        assert partitions.Input.of(x for x in range(9)).length == 9


def test_the_message_limit_comes_from_the_config() -> None:
    with dask.config.set({"daskflow.parallel-map.message-limit": 5}):
        err = errors.ParallelMapError(3, "ValueError", "abcdefghij")
    assert err.message == "abcde..." and "abcde... (the other items" in str(err)

def test_a_big_list_does_not_go_into_the_graph(client: Any) -> None:
    # 2M ints would be ~10 MB of literals: distributed would warn about a large
    # graph (an error under this suite's warning filter) and walk every literal.
    items = list(range(2_000_000))
    assert sum(parallel_map(lambda x: x & 1, items, batch_size=1_000_000)) == 1_000_000


def _leftover_folders() -> set[str]:
    import glob
    import tempfile

    return set(glob.glob("/dev/shm/daskflow-parallel-map-*")) | set(
        glob.glob(os.path.join(tempfile.gettempdir(), "daskflow-parallel-map-*")))


@pytest.mark.parametrize("setting", ["auto", False])
def test_big_partitions_through_a_shared_folder_or_scattered(client: Any, setting: Any) -> None:
    import dask

    before = _leftover_folders()
    batches = [list(range(i, i + 300_000)) for i in range(0, 1_500_000, 300_000)]  # ~1.5 MB each
    with dask.config.set({"daskflow.parallel-map.shared-folder": setting}):
        assert parallel_map(sum, batches) == [sum(b) for b in batches]
    assert _leftover_folders() == before  # removed after the call


def test_a_partition_that_does_not_fit_the_shared_folder_is_scattered(
        client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport.SharedFolder, "put", lambda self, data: None)
    batches = [list(range(300_000)), list(range(5))]
    assert parallel_map(len, batches) == [300_000, 5]


def test_no_shared_folder_when_a_worker_cannot_see_it(tmp_path: Path) -> None:
    import dask

    class FarClient:
        def run(self, func: Any, *args: Any) -> dict[str, bool]:
            return {"tcp://here:1": True, "tcp://elsewhere:1": False}

    with dask.config.set({"daskflow.parallel-map.shared-folder": str(tmp_path)}):
        assert transport.SharedFolder.open(FarClient()) is None
    assert list(tmp_path.iterdir()) == []  # the probe folder is gone again



@pytest.mark.parametrize("setting", ["folder", False])
def test_the_payload_limit_comes_from_the_config(client: Any, tmp_path: Path,
                                                 setting: Any) -> None:
    folder = str(tmp_path) if setting == "folder" else False
    with dask.config.set({"daskflow.parallel-map.payload-limit": "1kB",
                          "daskflow.parallel-map.shared-folder": folder}):
        sender = transport.Transport(client)
        (big, small), workers = sender.send([b"x" * 2000, b"y" * 500])
        try:
            assert small == b"y" * 500  # under the limit: into the graph as it is
            if setting == "folder":
                assert isinstance(big, transport.SharedFile)
                assert big.path.startswith(str(tmp_path))
                assert workers == sorted(client.scheduler_info()["workers"])
            else:
                assert big.result() == b"x" * 2000  # scattered to the workers
                assert workers is None
        finally:
            sender.close()
    assert list(tmp_path.iterdir()) == []

@pytest.mark.parametrize("empty", [[], (), range(0), iter([]), set(), np.array([])],
                         ids=["list", "tuple", "range", "iterator", "set", "numpy"])
def test_empty_input_starts_nothing(monkeypatch: pytest.MonkeyPatch, empty: Any) -> None:
    def no_cluster() -> Any:
        raise AssertionError("an empty map must not start a cluster")

    monkeypatch.setattr(engine, "_cluster_client", no_cluster)
    assert parallel_map(_square, empty) == []
    assert list(parallel_imap_unordered(_square, empty)) == []


def test_generator_without_len_is_read_lazily(client: Any) -> None:
    read = []

    def endless() -> Any:
        for i in iter(int, 1):  # never ends
            read.append(i)
            yield len(read)

    results = []
    it = parallel_imap_unordered(_square, endless())
    for value in it:
        results.append(value)
        if len(results) >= 3000:
            break
    it.close()
    assert len(results) == 3000
    assert len(read) < 1_000_000  # only a few partitions ahead of what was consumed


def test_a_short_generator(client: Any) -> None:
    assert parallel_map(_square, (x for x in range(10))) == [x * x for x in range(10)]


# -- errors -------------------------------------------------------------------------------

def test_the_failing_item_is_named(client: Any) -> None:
    with pytest.raises(ParallelMapError) as info:
        parallel_map(lambda x: 1 / (x - 537), range(1000))
    err = info.value
    assert isinstance(err, DaskflowException)
    assert err.index == 537
    assert err.type_name == "ZeroDivisionError"
    assert "items[537] = 537" in str(err) and "division by zero" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert "Traceback on the Dask worker" in "".join(getattr(err.__cause__, "__notes__", []))
    assert "1 / (x - 537)" in err.traceback_text


def test_the_failing_item_of_a_list_in_batches(client: Any) -> None:
    items = [f"k{i}" for i in range(2000)]
    items[1234] = None
    with pytest.raises(ParallelMapError) as info:
        parallel_map(lambda s: s.upper(), items, batch_size=100)
    assert info.value.index == 1234
    assert info.value.type_name == "AttributeError"
    assert "items[1234] = None" in str(info.value)


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot travel")
        self.lock = threading.Lock()


def test_an_exception_that_cannot_be_pickled(client: Any) -> None:
    def fail(x: int) -> int:
        if x == 3:
            raise _Unpicklable()
        return x

    with pytest.raises(ParallelMapError) as info:
        parallel_map(fail, range(10))
    assert info.value.index == 3
    assert info.value.type_name == "_Unpicklable"
    assert "cannot travel" in str(info.value)


def test_a_failure_cancels_the_other_work(client: Any, tmp_path: Path) -> None:
    def work(x: int) -> int:
        if x == 0:
            raise RuntimeError("first item is bad")
        time.sleep(0.2)
        (tmp_path / str(x)).touch()
        return x

    with pytest.raises(ParallelMapError, match="first item is bad"):
        parallel_map(work, range(60), batch_size=1)
    deadline = time.time() + 30
    while _scheduler_keys(client) and time.time() < deadline:
        time.sleep(0.05)
    assert _scheduler_keys(client) == []
    done_at_error = len(list(tmp_path.iterdir()))
    time.sleep(1.0)
    # Without cancelling, all 59 would run (about 6 s on two workers).
    assert len(list(tmp_path.iterdir())) <= done_at_error + 2 < 59


def test_stopping_the_iterator_cancels_the_rest(client: Any, tmp_path: Path) -> None:
    def work(x: int) -> int:
        time.sleep(0.1)
        (tmp_path / str(x)).touch()
        return x

    it = parallel_imap_unordered(work, range(200), batch_size=1)
    first = next(it)
    it.close()
    assert 0 <= first < 200
    time.sleep(1.0)
    assert _scheduler_keys(client) == []
    assert len(list(tmp_path.iterdir())) < 100


@pytest.mark.parametrize("kwargs, match", [
    ({"max_parallel": 0}, "max_parallel must be a whole number"),
    ({"max_parallel": 1.5}, "max_parallel must be a whole number"),
    ({"batch_size": -1}, "batch_size must be a whole number"),
    ({"batch_size": True}, "batch_size must be a whole number"),
])
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ParallelMapInputError, match=match):
        parallel_map(_square, range(3), **kwargs)


def test_bad_func_and_iterable() -> None:
    with pytest.raises(ParallelMapInputError, match="must be a function"):
        parallel_map([1, 2], range(3))  # type: ignore[arg-type]
    with pytest.raises(ParallelMapInputError, match="needs an iterable"):
        parallel_map(_square, 5)  # type: ignore[arg-type]


def test_a_func_that_cannot_be_pickled(client: Any) -> None:
    lock = threading.Lock()

    def guarded(x: int) -> int:
        with lock:
            return x

    with pytest.raises(ParallelMapInputError, match="cannot be pickled"):
        parallel_map(guarded, range(3))


def test_a_result_that_cannot_be_pickled_names_its_item(client: Any) -> None:
    def lock_at_five(x: int) -> Any:
        import threading
        return threading.Lock() if x == 5 else x

    with pytest.raises(ParallelMapError) as info:
        parallel_map(lock_at_five, range(8), batch_size=4)
    assert info.value.index == 5
    assert "result for item 5 cannot be pickled to travel back" in str(info.value)


def test_an_item_that_cannot_be_pickled(client: Any) -> None:
    items: list[Any] = [1, 2, threading.Lock(), 4]
    with pytest.raises(ParallelMapInputError, match=r"item 2 \(<unlocked _thread.lock"):
        parallel_map(lambda x: x, items)


# -- max_parallel --------------------------------------------------------------------------

def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _timed(x: int) -> tuple[float, float]:
    start = time.time()
    time.sleep(0.05)
    return start, time.time()


def test_max_parallel_bounds_running_partitions() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=4, processes=False,
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        with client.as_current():
            free = parallel_map(_timed, range(24), batch_size=1)
            one = parallel_map(_timed, range(12), max_parallel=1, batch_size=1)
            two = parallel_map(_timed, range(24), max_parallel=2, batch_size=1)
            two_unordered = list(parallel_imap_unordered(_timed, range(24), max_parallel=2,
                                                         batch_size=1))
    assert _max_overlap(free) > 2  # the cluster has 4 threads to use
    assert _max_overlap(one) == 1
    assert _max_overlap(two) == 2
    assert _max_overlap(two_unordered) == 2


# -- where it runs ------------------------------------------------------------------------

def test_it_runs_on_the_current_client(client: Any) -> None:
    worker_pids = set(client.run(os.getpid).values())
    pids = set(parallel_map(lambda _: os.getpid(), range(40), batch_size=1))
    assert pids <= worker_pids
    assert client.status == "running"  # not closed by the map


def test_inside_a_dask_task_it_does_not_deadlock(client: Any) -> None:
    # Both worker threads of the cluster are busy with tasks that map: each
    # hands its thread back while it waits, as a step does.
    def task(k: int) -> int:
        return sum(parallel_map(lambda x: x * k, range(1000), batch_size=100))

    futures = client.map(task, [1, 2], pure=False)
    assert client.gather(futures) == [499500, 999000]


def _children() -> set[int]:
    import psutil

    procs = psutil.Process().children(recursive=True)
    out = set()
    for proc in procs:
        try:
            # multiprocessing's helpers live as long as this process: its resource
            # tracker, and the fork server that workers are forked from (its children,
            # the workers, are what must be gone)
            cmdline = " ".join(proc.cmdline())
            if "resource_tracker" not in cmdline and "multiprocessing.forkserver" not in cmdline:
                out.add(proc.pid)
        except psutil.Error:
            pass
    return out


def test_without_a_client_it_keeps_one_local_cluster_for_the_process(capfd) -> None:
    from distributed import default_client

    from daskflow.collections.parallel.session import close_session_cluster

    with pytest.raises(ValueError):
        default_client()  # no client around: parallel_map must make its own
    import psutil

    before = _children()
    pids = set(parallel_map(lambda _: os.getpid(), range(20), batch_size=1))
    assert os.getpid() not in pids  # ran in worker processes
    workers = set(_workers_now())
    assert pids <= workers  # still up after the call
    again = set(parallel_map(lambda _: os.getpid(), range(20), batch_size=1))
    assert again <= workers == set(_workers_now())  # the same cluster
    err = capfd.readouterr().err
    assert err.count("dashboard: http://127.0.0.1:") == 1, err  # its link, shown once
    assert "Warning" not in err
    with pytest.raises(ValueError):
        default_client()  # the user's default client is left alone
    close_session_cluster()  # what happens at interpreter exit
    deadline = time.time() + 10
    while (_children() - before or any(map(psutil.pid_exists, pids))) \
            and time.time() < deadline:
        time.sleep(0.1)
    assert _children() - before == set()  # and they are gone
    assert not any(map(psutil.pid_exists, pids))


def _workers_now() -> list[int]:
    from daskflow.collections.parallel import session

    return list(session._client.run(os.getpid).values())


# -- parallel_imap_unordered ------------------------------------------------------------------

def test_imap_unordered_gives_every_result(client: Any) -> None:
    got = list(parallel_imap_unordered(_square, range(3000)))
    assert sorted(got) == [x * x for x in range(3000)]


def test_imap_unordered_reports_the_failing_item(client: Any) -> None:
    with pytest.raises(ParallelMapError) as info:
        list(parallel_imap_unordered(lambda x: [][x] if x == 77 else x, range(100)))
    assert info.value.index == 77
    assert isinstance(info.value.__cause__, IndexError)


_BAR_SCRIPT = textwrap.dedent("""
    import time
    from distributed import Client, LocalCluster
    from daskflow.collections import parallel_imap_unordered

    if __name__ == "__main__":
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster):
            total = sum(parallel_imap_unordered(lambda x: time.sleep(0.01) or x, range(50),
                                                batch_size=5))
        print("total", total)
""")


def _run_script(tmp_path: Path, stderr_tty: bool) -> tuple[str, str]:
    script = tmp_path / "bar.py"
    script.write_text(_BAR_SCRIPT)
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    if not stderr_tty:
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, proc.stderr
    import pty

    master, slave = pty.openpty()
    proc2 = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=slave, cwd=tmp_path, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc2.communicate(timeout=120)
    os.close(master)
    assert proc2.returncode == 0
    return out.decode(), b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    out, err = _run_script(tmp_path, stderr_tty=False)
    assert "total 1225" in out
    assert "parallel_map" not in err and "50/50" not in err
    out, err = _run_script(tmp_path, stderr_tty=True)
    assert "total 1225" in out
    assert "parallel_map" in err and "50/50" in err


# -- in a flow, as a user runs it -----------------------------------------------------------

def test_in_a_step_on_the_runs_cluster(run_flow: Any, workdir: Path) -> None:
    import daskflow

    proc = run_flow("parallel_map_flow.py", "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = daskflow.Flow("ParallelMapFlow").latest_run
    assert run.successful
    data = run["start"].task.data
    assert data.squares == [x * x + 3 for x in range(100_000)]
    assert data.doubled == [2 * (x * x + 3) for x in range(1000)]
    assert data.unordered_total == sum(range(5000))
    assert f"total={sum(x * x + 3 for x in range(100_000))}" in proc.stdout


def test_a_failing_item_fails_the_step(run_flow: Any, workdir: Path) -> None:
    import daskflow

    proc = run_flow("parallel_map_flow.py", "run", "--fail-at", "4321")
    assert proc.returncode != 0
    assert "ParallelMapError" in proc.stdout + proc.stderr
    assert "items[4321] = 4321" in proc.stdout + proc.stderr
    assert "item 4321 is bad" in proc.stdout + proc.stderr
    run = daskflow.Flow("ParallelMapFlow").latest_run
    assert not run.successful
