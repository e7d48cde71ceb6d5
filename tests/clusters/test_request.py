"""ResourceRequest itself: its environment slot, and the hooks every backend has."""

from __future__ import annotations

import dataclasses

import dask.config
import pytest

from daskflow.clusters import (
    ClusterBackend,
    LocalBackend,
    ResourceRequest,
    ResourceRequestError,
    get_backend,
)
from daskflow.clusters.request import export_lines
from daskflow.exceptions import ConfigurationError


# -- env: frozen, hashable, shown by name only ------------------------------------------------
@pytest.mark.fast
def test_env_is_kept_as_sorted_string_pairs_from_a_mapping_or_pairs() -> None:
    request = ResourceRequest(env={"MODE": "fast", "LEVEL": 3})
    assert request.env == (("LEVEL", "3"), ("MODE", "fast"))
    assert request.env_dict == {"LEVEL": "3", "MODE": "fast"}
    assert ResourceRequest(env=[("MODE", "fast"), ("LEVEL", "3")]) == request
    assert ResourceRequest().env == () and ResourceRequest().env_dict == {}


@pytest.mark.fast
def test_env_keeps_the_request_frozen_and_hashable() -> None:
    a = ResourceRequest(cpu=2, env={"A": "1", "B": "2"})
    b = ResourceRequest(cpu=2, env={"B": "2", "A": "1"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != ResourceRequest(cpu=2, env={"A": "1"}) != ResourceRequest(cpu=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.env = ()  # type: ignore[misc]
    a.env_dict["C"] = "3"  # a copy: the request does not change
    assert a.env_dict == {"A": "1", "B": "2"}
    assert dataclasses.replace(a, env={"C": "3"}).env == (("C", "3"),)


@pytest.mark.fast
def test_describe_names_the_variables_and_never_shows_their_values() -> None:
    request = ResourceRequest(cpu=4, memory=2**30, workers=2, env={"TOKEN": "s3cr3t", "A": "x"})
    assert request.describe() == "2 workers x (4 cores, 1 GiB), env A, TOKEN"
    assert "s3cr3t" not in request.describe() and "s3cr3t" not in get_backend(
        "local").describe(request)
    assert repr(request) == ("ResourceRequest(cpu=4, memory=1073741824, gpu=0, disk=None, "
                             "workers=2, env=<A, TOKEN>)")
    assert repr(ResourceRequest()) == ("ResourceRequest(cpu=1, memory=None, gpu=0, disk=None, "
                                       "workers=1)")  # as before there was env


@pytest.mark.fast
@pytest.mark.parametrize("env, message", [
    ({"1ABC": "x"}, r"env names '1ABC' \(letters, digits and underscores"),
    ({"A-B": "x", "OK": "y"}, r"env names 'A-B'"),
    ({"": "x"}, r"env names ''"),
    ({3: "x"}, r"env names 3"),
    ({"A": None}, r"env values of A \(a string or a number each; values are not shown\)"),
    ({"A": True}, r"env values of A"),
    ({"A": ["x"]}, r"env values of A"),
    ([("A", "1"), ("A", "2")], "env names given twice"),
    ("A=1", r"env='A=1' \(a mapping of variable names to values\)"),
    (5, r"env=5 \(a mapping"),
])
def test_bad_env_is_refused_with_what_is_wrong(env, message) -> None:
    with pytest.raises(ResourceRequestError, match=message) as info:
        ResourceRequest(env=env)
    assert "Invalid resource request" in str(info.value)


@pytest.mark.fast
def test_a_bad_value_is_not_echoed() -> None:
    with pytest.raises(ResourceRequestError) as info:
        ResourceRequest(env={"SECRET": {"password": "hunter2"}})
    assert "hunter2" not in str(info.value)


def test_export_lines_quote_values_for_the_shell() -> None:
    import subprocess
    env = ResourceRequest(env={"A": "it's $HOME; `x`", "B": ""}).env
    lines = export_lines(env)
    assert lines[0] == "export A='it'\"'\"'s $HOME; `x`'" and lines[1] == "export B=''"
    script = "\n".join([*lines, 'printf "%s|%s" "$A" "$B"'])
    assert subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          check=True).stdout == "it's $HOME; `x`|"


# -- the hooks a runtime calls on every backend ---------------------------------------------
@pytest.mark.fast
def test_default_request_local_follows_its_settings_others_one_core_per_worker() -> None:
    import os

    from daskflow.clusters.local import default_request
    assert LocalBackend().default_request(3) == default_request(3)
    with dask.config.set({"daskflow.local.n-workers": 1, "daskflow.local.threads-per-worker": 2}):
        assert LocalBackend().default_request(8) == ResourceRequest(cpu=2, workers=1)
    expected = ResourceRequest(cpu=1, workers=min(os.cpu_count() or 1, 64))
    assert get_backend("slurm").default_request(64) == expected
    assert get_backend("distributed.LocalCluster").default_request(64) == expected
    assert get_backend("slurm").default_request(1) == ResourceRequest(cpu=1, workers=1)


def test_prepare_starts_the_local_fork_server_and_is_a_no_op_elsewhere() -> None:
    from daskflow.clusters.local import forkserver
    ClusterBackend().prepare()
    get_backend("slurm").prepare()
    LocalBackend().prepare()
    assert forkserver.is_warm() == (forkserver.start_method() == "forkserver")


def fast_but_ssh(*params: tuple) -> list:
    """The params marked fast, but ssh's: importing asyncssh runs ldconfig, a process."""
    return [p if p[0] == "ssh" else pytest.param(*p, marks=pytest.mark.fast) for p in params]


@pytest.mark.parametrize("name, shares", fast_but_ssh(
    ("local", True), ("slurm", True), ("ssh", True), ("kubernetes", False),
    ("aws", False), ("aws-fargate", False), ("aws-ec2", False),
    ("distributed.LocalCluster", None),
))
def test_shares_filesystem_says_whether_workers_see_the_drivers_files(name, shares) -> None:
    pytest.importorskip({"kubernetes": "dask_kubernetes", "ssh": "asyncssh"}.get(
        name, "dask_cloudprovider.aws" if name.startswith("aws") else "dask"))
    assert get_backend(name).shares_filesystem is shares


@pytest.mark.parametrize("name", [*fast_but_ssh(("slurm",)), "ssh"])
def test_shares_filesystem_is_a_setting_where_it_depends_on_the_site(name) -> None:
    pytest.importorskip("asyncssh" if name == "ssh" else "dask_jobqueue")
    assert get_backend(name, shares_filesystem=False).shares_filesystem is False
    with dask.config.set({f"daskflow.cluster.{name}.shares-filesystem": False}):
        assert get_backend(name).shares_filesystem is False
    assert type(get_backend(name)).shares_filesystem is True


@pytest.mark.fast
def test_worker_memory_without_a_default_is_a_clear_error() -> None:
    with dask.config.set({"daskflow.cluster.slurm.memory": None}):
        with pytest.raises(ConfigurationError, match=r"daskflow.cluster.slurm.memory is None"):
            get_backend("slurm").worker_memory(ResourceRequest())
        assert get_backend("slurm").worker_memory(ResourceRequest(memory=2**30)) == 2**30
