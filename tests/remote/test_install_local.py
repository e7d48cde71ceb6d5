"""install_code on a LocalCluster, whose scheduler runs in the driver's own process."""

from __future__ import annotations

import sys

from distributed import Client, LocalCluster

from daskflow.remote import build_code_package, install_code


def test_the_driver_process_is_left_alone(tmp_path):
    (tmp_path / "flow.py").write_text("X = 1\n")
    archive = build_code_package(tmp_path / "flow.py")
    before = list(sys.path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        install_code(client, archive)
        [first] = client.run(lambda: sys.path[0]).values()
        local_directory = client.run(lambda dask_worker: dask_worker.local_directory)
    assert first == f"{next(iter(local_directory.values()))}/daskflow-code/{archive.sha}"
    assert sys.path == before  # the in-process scheduler needs no package: it has the code
