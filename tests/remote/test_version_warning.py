"""A remote run says each difference between the driver's and the workers' packages once:
in daskflow's environment check (naming the cluster and the step), not again in
distributed's ``VersionMismatchWarning`` table."""

from __future__ import annotations

import importlib.metadata

from .conftest import aws_env, start_stock_cluster, stock_env


def test_a_harmless_difference_is_said_once_by_the_environment_check(
        stock_python, moto_server, s3_root, run_flow, tmp_path):
    # a worker whose toolz reports another version (its metadata first on its path):
    # distributed's own check compares toolz, daskflow's did not
    other = tmp_path / "other-toolz"
    (other / "toolz-0.0.1.dist-info").mkdir(parents=True)
    (other / "toolz-0.0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: toolz\nVersion: 0.0.1\n")
    workdir, files = tmp_path / "workers", tmp_path / "scheduler"
    workdir.mkdir()
    files.mkdir()
    env = stock_env(aws_env(moto_server))
    cluster = start_stock_cluster(stock_python, workdir, files, env, workers=1,
                                  worker_env={**env, "PYTHONPATH": str(other)})
    try:
        result = run_flow("linear_params.py", "--datastore-root", s3_root, "run",
                          "--scheduler-address", cluster.address, env=aws_env(moto_server))
    finally:
        for process in reversed(list(cluster.processes)):
            cluster.stop(process)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Mismatched versions found" not in result.stderr
    assert "VersionMismatchWarning" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if "WorkerEnvironmentWarning" in line]
    driver = importlib.metadata.version("toolz")
    assert len(ours) == 1 and "Cluster 'default' (step 'start'): toolz 0.0.1 on " in ours[0]
    assert f"vs {driver} on the driver; tasks should still work" in ours[0]
    # the start line names the datastore as the URL it is
    assert f"datastore {s3_root}/LinearFlow" in result.stdout
