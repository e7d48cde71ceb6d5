"""Every cluster carries its run, step, user and daskflow version in its backend's own labels.

Pure translations, nothing started: the Kubernetes DaskCluster (its labels valid
label values, the resource valid against the operator's CRD schema, and the label
selector ``daskflow clusters list`` sends), the SLURM job script (``--comment``),
and the tags of ECS and EC2 resources. Against moto, see test_inventory.py.
"""

from __future__ import annotations

import re

import dask.config
import pytest

from daskflow.clusters import ResourceRequest, ResourceRequestError, get_backend
from daskflow.clusters.labels import (
    ClusterLabels,
    current_labels,
    labelled,
    labelled_step,
    run_finished,
    run_started,
)
from daskflow.clusters.lifetime import PRELOAD

#: awkward on purpose: a space, a comma, an @, a ';' and '=' that SLURM's comment uses
LABELS = ClusterLabels(run="TrainFlow/1796291234567890", step="fit, score; x=1",
                       user="ana@example.org", version="0.1.0", driver="node-7:4242")
#: Kubernetes: a qualified key (optional DNS prefix, then a name of at most 63)
K8S_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}"
                     r"[A-Za-z0-9])?")


@pytest.mark.fast
def test_labels_outside_a_run_name_the_user_version_and_driver() -> None:
    import os
    labels = current_labels()
    assert labels.run is None and labels.user and labels.version
    assert labels.driver_pid == os.getpid()
    run_started("17", "Flow/17", "/data")
    try:
        with labelled_step("17", "train"):
            assert (current_labels().run, current_labels().step) == ("Flow/17", "train")
            assert current_labels().datastore == "/data"
    finally:
        run_finished("17")
    assert current_labels().run is None


@pytest.mark.fast
def test_kubernetes_labels_are_valid_and_the_resource_matches_the_crd() -> None:
    pytest.importorskip("dask_kubernetes")
    pytest.importorskip("jsonschema")
    from daskflow.clusters.kubernetes.labels import K8S_VALUE, from_kubernetes
    from daskflow.clusters.kubernetes.inventory import (
        label_selector,
        parse_daskclusters,
    )
    from daskflow.clusters.kubernetes.spec import validate_cluster_spec
    long = ClusterLabels(**{**vars(LABELS), "step": "s" * 100 + "!"})
    for labels in (LABELS, long):
        with labelled(labels):
            spec = get_backend("kubernetes").cluster_spec(ResourceRequest(workers=2),
                                                          "daskflow-abc")
        metadata = spec["metadata"]
        assert validate_cluster_spec(spec) == []
        for key, value in metadata["labels"].items():
            assert K8S_KEY.fullmatch(key), key
            assert len(value) <= 63 and K8S_VALUE.fullmatch(value), (key, value)
        assert metadata["labels"]["daskflow.dev/flow"] == "TrainFlow"
        assert metadata["labels"]["daskflow.dev/run-id"] == "1796291234567890"
        # the exact values come back from the annotations
        assert from_kubernetes(metadata) == labels
        # what `list` sends selects this resource
        for requirement in label_selector(user=labels.user).split(","):
            key, value = requirement.split("=")
            assert metadata["labels"][key] == value
        spec["metadata"]["creationTimestamp"] = "2026-12-03T10:00:00Z"
        [found] = parse_daskclusters([spec, {"metadata": {"name": "not-ours"}}])
        assert (found.name, found.labels, found.workers) == ("daskflow-abc", labels, 2)


@pytest.mark.fast
def test_the_list_query_is_what_kr8s_would_send() -> None:
    pytest.importorskip("kr8s")
    from kr8s._api import Api

    from daskflow.clusters.kubernetes.inventory import delete_query, list_query
    query = list_query("ml")
    assert query["url"] == ("/apis/kubernetes.dask.org/v1/namespaces/ml/daskclusters"
                            "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddaskflow")
    for q in (query, list_query(None), delete_query("daskflow-abc", "ml")):
        call = q["call"]
        built = Api._construct_url(None, call["version"], call["base"], call["namespace"],
                                   call["url"])
        assert built == q["path"]


@pytest.mark.fast
def test_slurm_jobs_carry_the_labels_in_their_comment() -> None:
    pytest.importorskip("dask_jobqueue")
    from daskflow.clusters.slurm.inventory import parse_squeue
    from daskflow.clusters.slurm.labels import from_slurm_comment
    with labelled(LABELS):
        script = get_backend("slurm").job_script(ResourceRequest(memory=2**30),
                                                 name="daskflow-abc")
    [line] = [x for x in script.splitlines() if "--comment" in x]
    comment = line.split("--comment=", 1)[1]
    assert " " not in comment  # one word in the #SBATCH line
    labels = from_slurm_comment(comment)
    assert labels is not None
    assert (labels.run, labels.user, labels.driver) == (LABELS.run, LABELS.user, LABELS.driver)
    assert labels.step == "fit,_score__x_1"
    # how `list` reads squeue's answer back
    squeue = (f"11|daskflow-abc|RUNNING|2026-12-03T10:00:05|2026-12-03T10:00:00|{comment}\n"
              f"12|daskflow-abc|PENDING|N/A|2026-12-03T10:00:00|{comment}\n"
              f"13|someone-else|RUNNING|N/A|N/A|(null)\n")
    [cluster] = parse_squeue(squeue)
    assert (cluster.name, cluster.workers, cluster.state) == ("daskflow-abc", 1, "RUNNING")
    assert cluster.handle["jobs"] == ["11", "12"]


@pytest.mark.fast
def test_ecs_and_ec2_resources_are_tagged() -> None:
    pytest.importorskip("dask_cloudprovider")
    from daskflow.clusters.aws.labels import from_aws_tags
    with labelled(LABELS):
        fargate = get_backend("aws-fargate").cluster_kwargs(ResourceRequest(), name="c1")
        ec2 = get_backend("aws-ec2").cluster_kwargs(ResourceRequest(), name="c1")
    for tags in (fargate["tags"], ec2["instance_tags"], ec2["volume_tags"]):
        assert tags["daskflow-cluster"] == "c1"
        assert tags["daskflow-run"] == LABELS.run and tags["daskflow-user"] == LABELS.user
        assert tags["daskflow-step"] == "fit_ score_ x=1"  # AWS allows no ',' or ';'
        assert from_aws_tags(tags).driver == LABELS.driver


# -- the maximum lifetime, in each backend's scheduler options ---------------------------------
def _preloads(backend: str, request: ResourceRequest) -> list[str]:
    kwargs = get_backend(backend).cluster_kwargs(request, name="daskflow-abc")
    if backend == "local":
        return kwargs.get("scheduler_kwargs", {}).get("preload", [])
    if backend in ("slurm", "ssh"):
        return kwargs["scheduler_options"].get("preload", [])
    if backend == "kubernetes":
        args = kwargs["custom_cluster_spec"]["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    else:
        args = kwargs.get("scheduler_extra_args", [])
    return [args[i + 1] for i, arg in enumerate(args) if arg == "--preload"]


@pytest.mark.parametrize("backend", [  # ssh: importing asyncssh runs ldconfig, a process
    *(pytest.param(b, marks=pytest.mark.fast)
      for b in ("local", "slurm", "kubernetes", "aws-fargate")), "ssh"])
def test_every_scheduler_gets_the_max_lifetime(backend: str) -> None:
    pytest.importorskip({"slurm": "dask_jobqueue", "ssh": "asyncssh",
                         "kubernetes": "dask_kubernetes",
                         "aws-fargate": "dask_cloudprovider"}.get(backend, "distributed"))
    [own] = _preloads(backend, ResourceRequest(max_lifetime=7200))
    assert own == PRELOAD.format(seconds=7200.0).rstrip() and " " in own
    assert all(line.strip() for line in f"{own}\n".split("\n")[:-1])  # see lifetime.py
    assert not own.endswith((".py", "\n"))
    with dask.config.set({"daskflow.cluster.max-lifetime": "90 minutes"}):
        assert "MAX_LIFETIME = 5400.0" in _preloads(backend, ResourceRequest())[0]
    with dask.config.set({"daskflow.cluster.max-lifetime": None}):
        assert _preloads(backend, ResourceRequest()) == []


@pytest.mark.fast
def test_a_scheduler_we_did_not_start_gets_no_preload() -> None:
    pytest.importorskip("dask_cloudprovider")
    kwargs = get_backend("aws-fargate", scheduler_address="tcp://10.0.0.1:8786").cluster_kwargs(
        ResourceRequest(max_lifetime=60), name="c1")
    assert "scheduler_extra_args" not in kwargs


@pytest.mark.fast
def test_max_lifetime_is_checked_where_it_is_given() -> None:
    from daskflow import resources
    from daskflow.steps.base import StepDecoratorError
    assert resources(max_lifetime="2h").request().max_lifetime == 7200
    assert resources(max_lifetime=90).request().max_lifetime == 90
    with pytest.raises(StepDecoratorError, match=r"max_lifetime='soon'.*'2h'"):
        resources(max_lifetime="soon")
    with pytest.raises(StepDecoratorError, match="max_lifetime=0"):
        resources(max_lifetime=0)
    with pytest.raises(ResourceRequestError, match="max_lifetime=-1"):
        ResourceRequest(max_lifetime=-1)
    assert ResourceRequest(max_lifetime=60) != ResourceRequest()
