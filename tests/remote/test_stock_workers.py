"""Code shipped to stock Dask workers (no daskflow, no flow folder, an empty working directory).

Each test builds a real flow folder, packages it, installs it with the worker
plugin and runs functions of the shipped modules on the stock workers.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from pathlib import Path

import dask
import pytest

from daskflow.datastore import ArtifactStore
from daskflow.remote import (
    CodeInstallError,
    WorkerEnvironmentError,
    WorkerEnvironmentWarning,
    build_code_package,
    check_worker_environment,
    code_url,
    install_code,
    prepare_cluster,
    run_code,
    store_code,
)

HELPER = '''
import os
import sys

from {pkg}.sub.model import SCALE


def weight(x):
    """A flow's helper: uses a module of a package folder beside it."""
    return SCALE * x


def where():
    import daskflow
    return {{"file": __file__, "daskflow": daskflow.__file__, "python": sys.executable,
             "cwd": os.getcwd(), "version": VERSION}}


VERSION = {version}
'''


def make_project(root: Path, version: int = 1) -> tuple[Path, str, str]:
    """A flow folder with a helper module and a package under fresh names."""
    suffix = uuid.uuid4().hex[:8]
    helper, pkg = f"helpers_{suffix}", f"pkg_{suffix}"
    (root / pkg / "sub").mkdir(parents=True)
    (root / "flow.py").write_text(f"from {helper} import weight\n")
    (root / f"{helper}.py").write_text(HELPER.format(pkg=pkg, version=version))
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "sub" / "__init__.py").write_text("")
    (root / pkg / "sub" / "model.py").write_text("SCALE = 3\n")
    return root / "flow.py", helper, pkg


def import_helper(folder: Path, name: str, monkeypatch):
    """The helper as the driver imports it (functions of it then pickle by reference)."""
    monkeypatch.syspath_prepend(str(folder))
    return importlib.import_module(name)


def all_workers(client) -> list[str]:
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def test_stock_workers_cannot_import_the_flow_code_without_it(stock_client, stock_cluster,
                                                              tmp_path):
    _, helper, _ = make_project(tmp_path)

    def probe(name):
        import importlib.util
        return importlib.util.find_spec(name) is not None

    assert stock_client.run(probe, helper) == {w: False for w in all_workers(stock_client)}
    # the stock environment itself has no daskflow (the cluster may hold a package that
    # an earlier test installed: ask a fresh process of the same Python)
    import subprocess
    bare = subprocess.run([str(stock_cluster.python), "-c", "import daskflow"],
                          cwd=tmp_path, env=stock_cluster.env, capture_output=True, text=True)
    assert bare.returncode != 0 and "No module named 'daskflow'" in bare.stderr


def test_helpers_and_a_package_folder_run_on_stock_workers(stock_client, stock_cluster,
                                                           tmp_path, monkeypatch):
    flow, helper, pkg = make_project(tmp_path)
    archive = build_code_package(flow)
    install_code(stock_client, archive)
    module = import_helper(tmp_path, helper, monkeypatch)

    futures = [stock_client.submit(module.weight, i, workers=[w], pure=False)
               for i, w in enumerate(all_workers(stock_client))]
    assert stock_client.gather(futures) == [0, 3]
    for w in all_workers(stock_client):
        where = stock_client.submit(module.where, workers=[w], pure=False).result()
        code = f"{os.sep}daskflow-code{os.sep}{archive.sha}{os.sep}"
        assert code in where["file"]
        # daskflow is shipped too: this package's, or (after a shared scheduler's run on
        # these workers, whose package stays active until another's turn) that run's
        packages = f"{os.sep}daskflow-packages{os.sep}"
        assert code in where["daskflow"] or packages in where["daskflow"]
        assert where["python"].startswith(str(stock_cluster.python.parent))
        assert where["cwd"] == str(stock_cluster.workdir)
    # the package sits ahead of the worker's installed packages on the path: it wins over
    # anything installed there (a shared scheduler's run packages, when one ran on these
    # workers, may come first: each is a package of daskflow's too)
    paths = stock_client.run(lambda: list(sys.path))
    for path in paths.values():
        mine = [i for i, p in enumerate(path) if p.endswith(f"daskflow-code{os.sep}{archive.sha}")]
        installed = [i for i, p in enumerate(path) if p.endswith("site-packages")]
        assert mine and installed and mine[0] < installed[0], path
    assert os.listdir(stock_cluster.workdir) == []


def test_workers_that_join_or_restart_later_get_it(stock_client, stock_cluster, tmp_path,
                                                   monkeypatch):
    flow, helper, _ = make_project(tmp_path)
    install_code(stock_client, build_code_package(flow))
    module = import_helper(tmp_path, helper, monkeypatch)
    before = set(all_workers(stock_client))
    late = stock_cluster.start_worker()
    try:
        stock_client.wait_for_workers(3, timeout=60)
        [newcomer] = set(all_workers(stock_client)) - before
        assert stock_client.submit(module.weight, 5, workers=[newcomer]).result() == 15
    finally:
        stock_cluster.stop(late)
    deadline = time.monotonic() + 30
    while len(all_workers(stock_client)) > 2 and time.monotonic() < deadline:
        time.sleep(0.1)

    stock_client.restart(wait_for_workers=True)  # new worker processes, same plugin
    stock_client.wait_for_workers(2, timeout=60)
    assert set(all_workers(stock_client)).isdisjoint(before)
    assert stock_client.gather([stock_client.submit(module.weight, 7, pure=False,
                                                    workers=[w])
                                for w in all_workers(stock_client)]) == [21, 21]
    assert os.listdir(stock_cluster.workdir) == []


def test_a_new_package_replaces_the_last_one(stock_client, tmp_path):
    flow, helper, _ = make_project(tmp_path / "one", version=1)
    install_code(stock_client, build_code_package(flow))

    def version(name):
        import importlib
        return importlib.import_module(name).VERSION

    assert set(stock_client.run(version, helper).values()) == {1}
    (tmp_path / "one" / f"{helper}.py").write_text(
        (tmp_path / "one" / f"{helper}.py").read_text().replace("VERSION = 1", "VERSION = 2"))
    second = build_code_package(flow)
    install_code(stock_client, second)
    # the module imported from the first package is forgotten, not served from sys.modules
    assert set(stock_client.run(version, helper).values()) == {2}
    paths = stock_client.run(lambda: [p for p in sys.path if "daskflow-code" in p])
    assert all(len(p) == 1 and p[0].endswith(second.sha) for p in paths.values())


def test_installed_from_the_s3_datastore_by_url(stock_client, tmp_path, s3_root, monkeypatch):
    flow, helper, _ = make_project(tmp_path)
    archive = build_code_package(flow)
    store = ArtifactStore(s3_root, "RemoteFlow")
    record = store_code(archive, store)
    url = code_url(store, record)
    assert url.startswith("s3://") and url.endswith(f"/_code/{archive.sha}.tar.gz")
    install_code(stock_client, url)  # each worker reads it from S3 itself
    module = import_helper(tmp_path, helper, monkeypatch)
    assert stock_client.submit(module.weight, 2).result() == 6

    code = run_code(ArtifactStore(s3_root, "RemoteFlow"), {"code": record})
    assert code.path == url and code.info["script"] == "flow.py"
    assert code.flowspec == f"from {helper} import weight\n"


def test_a_corrupt_package_is_refused_on_the_workers(stock_client, tmp_path, s3_root):
    flow, _, _ = make_project(tmp_path)
    archive = build_code_package(flow)
    store = ArtifactStore(s3_root, "RemoteFlow")
    url = code_url(store, store_code(archive, store))
    store.files.fs.pipe_file(url, archive.data[:-10])
    with pytest.raises(CodeInstallError, match=f"has sha256 .* expected {archive.sha}"):
        install_code(stock_client, url, cluster="stock")


def test_the_stock_workers_match_the_driver(stock_client, s3_root):
    assert check_worker_environment(stock_client, cluster="stock", step="train",
                                    datastore_root=s3_root) == []


def driver_like(**changes):
    """The workers' own versions, with ``changes``: a driver that differs just so."""
    from daskflow.remote.environment import driver_environment, packages_for
    versions = driver_environment(packages_for("s3://bucket"))
    return {**versions, **changes}


def test_a_version_that_breaks_unpickling_is_refused(stock_client):
    driver = driver_like(dask="2026.7.0")
    with pytest.raises(WorkerEnvironmentError) as info:
        check_worker_environment(stock_client, cluster="slurm-7f3a", step="train",
                                 datastore_root="s3://bucket/flows", driver_versions=driver)
    message = str(info.value)
    workers = all_workers(stock_client)
    assert message.startswith("Cluster 'slurm-7f3a' cannot run step 'train'")
    assert (f"dask {dask.__version__} on {workers[0]} and 2 more vs 2026.7.0 on the driver; "
            "must match exactly") in message
    assert "pip install 'dask==2026.7.0'" in message
    assert [m.package for m in info.value.mismatches] == ["dask"]


def test_a_package_missing_on_the_workers_is_refused(stock_client):
    driver = driver_like(gcsfs="2026.9.0")
    with pytest.raises(WorkerEnvironmentError, match=r"gcsfs not installed on .* vs 2026\.9\.0 "
                       r"on the driver, which the datastore or the tasks need"):
        check_worker_environment(stock_client, cluster="k8s", step="start",
                                 datastore_root="gs://bucket", driver_versions=driver)


def test_python_minor_and_cloudpickle_major_are_refused(stock_client):
    python = "%d.%d.0" % (sys.version_info[0], sys.version_info[1] + 1)
    driver = driver_like(python=python, cloudpickle="2.2.1")
    with pytest.raises(WorkerEnvironmentError) as info:
        check_worker_environment(stock_client, cluster="aws", step="end",
                                 driver_versions=driver)
    assert {m.package for m in info.value.mismatches} == {"python", "cloudpickle"}
    assert "the minor version must match" in str(info.value)
    assert "the major version must match" in str(info.value)


def test_a_harmless_difference_is_a_warning(stock_client):
    import pandas
    major, minor, patch = pandas.__version__.split(".")[:3]
    other = f"{major}.{minor}.{int(patch) + 1}"
    driver = driver_like(pandas=other)
    with pytest.warns(WorkerEnvironmentWarning, match=rf"Cluster 'local' \(step 'start'\): "
                      rf"pandas {pandas.__version__} on .* vs {other} on the driver"):
        found = check_worker_environment(stock_client, cluster="local", step="start",
                                         driver_versions=driver)
    assert [(m.package, m.fatal) for m in found] == [("pandas", False)]


FLOW = '''
from daskflow import FlowSpec, step
from {helper} import weight


class StockWorkerFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.scale, foreach="items")

    @step
    def scale(self):
        import os
        import sys
        self.value = weight(self.input)
        self.seen = {{"cwd": os.getcwd(), "python": sys.executable}}
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    StockWorkerFlow()
'''


def test_a_flow_importing_helpers_runs_on_stock_workers(stock_client, stock_cluster, tmp_path,
                                                        s3_root, monkeypatch):
    """Only these pieces and today's runner: package, check, install, run against S3."""
    from daskflow import Runner
    _, helper, _ = make_project(tmp_path)
    flow = tmp_path / "stock_worker_flow.py"
    flow.write_text(FLOW.format(helper=helper))
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python stock_worker_flow.py` has it
    monkeypatch.chdir(tmp_path)
    assert prepare_cluster(stock_client, build_code_package(flow), cluster="stock",
                           step="start", datastore_root=s3_root) == []
    run = Runner(str(flow), scheduler_address=stock_cluster.address, datastore_root=s3_root,
                 quiet=True, stream_output=False).run()
    assert run.successful and run.data.values == [3, 6, 9]
    for task in run["scale"]:
        assert task.data.seen == {"cwd": str(stock_cluster.workdir),
                                  "python": str(stock_cluster.python)}
    assert os.listdir(stock_cluster.workdir) == []
