"""The AWS backends' translation: a request as dask-cloudprovider's keyword arguments.

- Fargate: the request is rounded up to the smallest valid Fargate task size
  (:data:`~.sizing.FARGATE_SIZES`); what Fargate cannot give (a GPU, more than 16
  vCPU or 120 GiB, more than 20 GiB of disk) is refused with the limits.
- ECS on EC2: the task asks for exactly the request (CPU units, MiB, GPUs); the
  check refuses what no registered container instance can hold, naming the
  smallest instance type that would.
- EC2: each worker gets the smallest instance type of :mod:`.instances`
  that fits (GPU requests get GPU types).

Every wait has a bound (``daskflow.cluster.start-timeout``, and
``api-timeout`` for each API call daskflow makes itself).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

# missing: the registry says "pip install 'daskflow[aws]'"
import dask_cloudprovider.aws  # noqa: F401

from ... import config
from ...exceptions import ConfigurationError
from ...secrets import SecretRef, parse_reference, split_env
from ..base import SCHEDULER_ENV
from ..deaths import Death
from ..errors import ResourceRequestError
from ..labels import current_labels
from ..lifetime import scheduler_args
from ..live import LiveCluster
from ..request import MiB, ResourceRequest, format_bytes
from ..security import cluster_security, credentials
from . import inventory
from .deaths import ec2_instance_cause, ecs_task_cause, ecs_task_words
from .instances import (
    INSTANCE_TYPES,
    InstanceType,
    by_name,
    largest,
    smallest_fitting,
)
from .labels import CLUSTER_TAG, aws_tags
from .network import create_security_group, describe_exposure, exposure
from .pricing import worker_hour_price
from .resources import AWSResources
from .secrets import store_secrets, tls_environment
from .sizing import (
    FARGATE_DISK,
    cpu_units,
    describe_size,
    describe_type,
    fargate_size,
)

__all__ = ["AWSBackend", "AWSEC2Backend", "AWSECSBackend", "AWSFargateBackend"]


class AWSBackend(AWSResources):
    """Workers as ECS tasks (Fargate or EC2 capacity) or EC2 instances, sized by the request.

    >>> kwargs = AWSFargateBackend().cluster_kwargs(
    ...     ResourceRequest(cpu=2, memory=5 * 2**30, workers=2), name="daskflow-1")
    >>> kwargs["worker_cpu"], kwargs["worker_mem"], kwargs["n_workers"]
    (2048, 5120, 2)
    """

    #: `daskflow clusters list` asks ECS and EC2 once for all aws backends (:mod:`.inventory`)
    listed_by = "aws"

    # -- translation (pure) ----------------------------------------------------------------
    def instance_type(self, request: ResourceRequest) -> InstanceType:
        """The EC2 type of one worker (ec2), or of the container instance one would need (ecs)."""
        from dask.utils import parse_bytes
        named = self.option("instance-type")
        if named:
            return by_name(named) or InstanceType(named, 0, 0, 0, "")
        reserved = parse_bytes(self.option("reserved-memory"))
        need_mib = math.ceil((self.worker_memory(request) + reserved) / MiB)
        families = self.option("instance-families")
        chosen = smallest_fitting(request.cpu, need_mib, request.gpu, families)
        if chosen is None:
            top = largest(INSTANCE_TYPES, gpus=bool(request.gpu), families=families)
            raise ResourceRequestError(
                f"No EC2 instance type daskflow knows can hold a worker of "
                f"{describe_size(request, self.worker_memory(request))} plus "
                f"{format_bytes(reserved)} for the system (daskflow.cluster.aws."
                f"reserved-memory){f' among families {families}' if families else ''}: the "
                f"largest is {f'{top.name} ({describe_type(top)})' if top else 'none'}. Ask "
                f"for less, or name "
                f"a type with daskflow.cluster.aws.instance-type.")
        return chosen

    @property
    def secrets_by_reference(self) -> bool:  # type: ignore[override]
        """ECS and Fargate tasks get secrets from Secrets Manager (:mod:`.secrets`)."""
        return self.launch_type != "ec2"

    def environment(self, request: ResourceRequest) -> dict[str, str]:
        """The variables scheduler and workers start with: the settings', then the step's.

        Secret entries of the ``environment`` setting are not among them (:meth:`secrets`).
        """
        plain, secret = split_env(self.option("environment"),
                                  what="daskflow.cluster.aws.environment")
        if secret and self.launch_type == "ec2":
            raise ConfigurationError(
                f"daskflow.cluster.aws.environment: secret entries ({', '.join(secret)}) "
                f"reach ECS and Fargate tasks only; EC2 instances get their environment in "
                f"their user data. Give them to the step: @environment(secrets=...).")
        return {**plain, **request.env_dict}

    def secrets(self, request: ResourceRequest) -> dict[str, SecretRef]:
        """The secret variables of an ECS/Fargate cluster: the settings', then the step's."""
        _, secret = split_env(self.option("environment"),
                              what="daskflow.cluster.aws.environment")
        return {**secret, **{name: parse_reference(ref, what=name)
                             for name, ref in request.secrets}}

    def _common(self, name: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"name": name}
        for key, kwarg in (("region", "region_name"), ("vpc", "vpc"), ("subnets", "subnets"),
                           ("security-groups", "security_groups")):
            if self.option(key) is not None:
                kwargs[kwarg] = self.option(key)
        return kwargs

    def cluster_kwargs(self, request: ResourceRequest, *,
                       name: str | None = None) -> dict[str, Any]:
        name = name or "daskflow"
        if self.launch_type == "ec2":
            return self._ec2_kwargs(request, name)
        memory = self.worker_memory(request)
        if self.launch_type == "fargate":
            units, memory_mib = fargate_size(request.cpu, math.ceil(memory / MiB))
        else:  # ECS on EC2 capacity: exactly what was asked
            units, memory_mib = cpu_units(request.cpu), math.ceil(memory / MiB)
        idle = config.get("cluster.idle-timeout")
        kwargs = {
            **self._common(name),
            "n_workers": request.workers,
            "worker_cpu": units,
            "worker_mem": memory_mib,
            "worker_gpu": request.gpu or None,
            "worker_nthreads": request.threads,
            # dask-cloudprovider's --memory-limit is whole GB, rounded down (3000 MB -> 2GB,
            # 512 MB -> 0GB = no limit): the last --memory-limit wins, this one is exact
            "worker_extra_args": ["--memory-limit", str(memory)],
            "scheduler_cpu": int(self.option("scheduler-cpu")),
            "scheduler_mem": int(self.option("scheduler-memory")),
            "scheduler_timeout": idle or "1 day",
            "image": self.image(),
            "environment": {**SCHEDULER_ENV, **self.environment(request)},
            "tags": self.tags(name),
            "task_role_policies": list(self.option("task-role-policies") or []),
            "fargate_use_private_ip": bool(self.option("use-private-ip")),
            # its stale-resource sweep deletes any idle dask-cloudprovider cluster in the
            # account, including one another step is starting: daskflow cleans its own
            "skip_cleanup": True,
        }
        for key, kwarg in (("cluster-arn", "cluster_arn"),
                           ("execution-role-arn", "execution_role_arn"),
                           ("task-role-arn", "task_role_arn")):
            if self.option(key):
                kwargs[kwarg] = self.option(key)
        if self.launch_type == "ecs":  # FargateCluster sets both to True itself
            kwargs.update(fargate_scheduler=False, fargate_workers=False)
        if self.option("scheduler-address"):
            kwargs["scheduler_address"] = self.option("scheduler-address")
            kwargs["shutdown_scheduler"] = False  # not ours to stop
        elif scheduler_args(request):  # ours: it ends itself at its max lifetime
            kwargs["scheduler_extra_args"] = scheduler_args(request)
        return kwargs

    def tags(self, name: str) -> dict[str, str]:
        """The settings' tags, the run's labels (run, step, user, ...) and the cluster's name."""
        return {**(self.option("tags") or {}), **aws_tags(current_labels()),
                CLUSTER_TAG: name}

    def _ec2_kwargs(self, request: ResourceRequest, name: str) -> dict[str, Any]:
        instance = self.instance_type(request)
        filesystem = int(self.option("filesystem-size"))
        if request.disk is not None:
            filesystem = max(filesystem, math.ceil(request.disk / 10**9) + 10)  # + image, OS
        kwargs = {
            **self._common(name),
            "n_workers": request.workers,
            "worker_instance_type": instance.name,
            "scheduler_instance_type": self.option("scheduler-instance-type"),
            "worker_class": "dask_cuda.CUDAWorker" if request.gpu else "distributed.Nanny",
            "worker_options": {"nthreads": request.threads,
                               "memory_limit": self.worker_memory(request)},
            "docker_image": self.image(),
            "env_vars": {**SCHEDULER_ENV, **self.environment(request)},
            "instance_tags": self.tags(name),
            "volume_tags": self.tags(name),
            "filesystem_size": filesystem,
            "bootstrap": bool(self.option("bootstrap")),
            "use_private_ip": bool(self.option("use-private-ip")),
        }
        if "subnets" in kwargs:
            subnets = kwargs.pop("subnets")
            kwargs["subnet_id"] = subnets[0] if isinstance(subnets, list) else subnets
        if "region_name" in kwargs:
            kwargs["region"] = kwargs.pop("region_name")
        for key in ("ami", "key-name", "iam-instance-profile"):
            if self.option(key) is not None:
                kwargs[key.replace("-", "_")] = self.option(key)
        idle = config.get("cluster.idle-timeout")
        if idle:
            kwargs["scheduler_options"] = {"idle_timeout": idle}
        return kwargs

    def describe(self, request: ResourceRequest) -> str:
        """What would be asked, and what it exposes (:mod:`.network`); nothing is contacted.

        ``aws-fargate: 2 tasks of 4 vCPU / 16 GiB (Fargate size 4096/16384), ...``
        """
        text = self._describe_size(request)
        if ": cannot serve" in text:
            return text
        return f"{text}; {describe_exposure(self.exposure(request))}"

    def exposure(self, request: ResourceRequest) -> dict[str, Any]:
        """Ports, sources, public IP, TLS of a cluster for ``request``; nothing is contacted."""
        return exposure(self)

    def _describe_size(self, request: ResourceRequest) -> str:
        memory = self.worker_memory(request)
        n = request.workers
        try:
            if self.launch_type != "ecs":  # ecs without cluster-arn: still say the size
                self.refuse(request)
            if self.launch_type == "ec2":
                t = self.instance_type(request)
                return (f"aws-ec2: {n} {t.name} instance{'s' if n != 1 else ''} "
                        f"({describe_type(t)}), one worker of {describe_size(request, memory)} each"
                        f", plus a {self.option('scheduler-instance-type')} scheduler")
            if self.launch_type == "fargate":
                units, mib = fargate_size(request.cpu, math.ceil(memory / MiB))
                return (f"aws-fargate: {n} task{'s' if n != 1 else ''} of {units / 1024:g} vCPU"
                        f" / {format_bytes(mib * MiB)} (Fargate size {units}/{mib}), worker "
                        f"{describe_size(request, memory)}")
            units = cpu_units(request.cpu)
            gpu = f" / {request.gpu} GPU" if request.gpu else ""
            return (f"aws-ecs: {n} task{'s' if n != 1 else ''} of {units} CPU units / "
                    f"{math.ceil(memory / MiB)} MiB{gpu} on cluster "
                    f"{self.option('cluster-arn') or '(daskflow.cluster.aws.cluster-arn unset)'}")
        except ResourceRequestError as exc:
            return f"aws-{self.launch_type}: cannot serve {request.describe()}: {exc}"

    # -- before anything starts ----------------------------------------------------------
    def check(self, request: ResourceRequest) -> None:
        """Refuse what the launch type can never give, then ask AWS (bounded) if it can start."""
        self.refuse(request)
        self.preflight(request)

    def refuse(self, request: ResourceRequest) -> None:
        """The part of :meth:`check` that needs no AWS: raise what can never be served."""
        memory = self.worker_memory(request)
        if self.launch_type == "fargate":
            if request.gpu:
                raise ResourceRequestError(
                    f"Fargate has no GPUs (asked for {request.gpu}). Run the step on GPU "
                    f"instances: @resources(gpu={request.gpu}, backend='aws-ec2'), or on an "
                    f"ECS cluster with GPU container instances (backend='aws-ecs').")
            if request.disk is not None and request.disk > FARGATE_DISK:
                raise ResourceRequestError(
                    f"Fargate tasks get {format_bytes(FARGATE_DISK)} of disk; dask-cloudprovider "
                    f"cannot ask for more (asked {format_bytes(request.disk)}). Ask for less, "
                    f"or use backend='aws-ec2' (its root disk grows with disk=).")
            fargate_size(request.cpu, math.ceil(memory / MiB))
        elif self.launch_type == "ec2":
            self.instance_type(request)
        elif not self.option("cluster-arn"):
            raise ResourceRequestError(
                "The aws-ecs backend runs tasks on an existing ECS cluster with EC2 container "
                "instances: set daskflow.cluster.aws.cluster-arn (or use aws-fargate).")

    # -- start ----------------------------------------------------------------------------
    def prepare_ecs(self, request: ResourceRequest, name: str, kwargs: dict[str, Any]) -> None:
        """What an ECS/Fargate cluster needs made first: its security group
        (:mod:`.network`), TLS and secrets in Secrets Manager (:mod:`.secrets`)."""
        if "security_groups" not in kwargs:
            kwargs["security_groups"] = [create_security_group(self, name, kwargs)]
        tls = None if self.option("scheduler-address") else cluster_security()
        tls_key = None
        if tls is not None:
            cert, tls_key = credentials()
            kwargs["environment"] = {**kwargs["environment"], **tls_environment(cert)}
            kwargs["security"] = tls
            kwargs["scheduler_extra_args"] = ["--protocol", "tls"]
        refs = self.secrets(request)
        if refs or tls_key:
            kwargs["daskflow_secrets"] = store_secrets(self, name, refs, kwargs["tags"], tls_key)

    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        import dask
        from dask.utils import parse_timedelta

        from .cluster import CLUSTER_CLASSES  # imports dask-cloudprovider's classes
        kwargs = self.cluster_kwargs(request, name=name)
        timeout = parse_timedelta(config.get("cluster.start-timeout"))
        cls = CLUSTER_CLASSES[self.launch_type]
        if self.launch_type == "ec2":
            # the run's credentials (not an RSA key of its own per cluster); False: plain
            # tcp when daskflow.cluster.tls is off
            kwargs["security"] = cluster_security() or False
        else:
            self.prepare_ecs(request, name, kwargs)
        # EC2Cluster's TLS set-up writes temporary certificates into the global dask
        # config; they belong to that cluster's Security object, not to this process
        saved = copy.deepcopy(dask.config.get("distributed.comm"))
        try:
            cluster = cls(daskflow_start_timeout=timeout, daskflow_request=request, **kwargs)
        finally:
            dask.config.set({"distributed.comm": saved})
        cluster.job_name = name  # type: ignore[attr-defined]  # as dask-jobqueue's: to find it
        return cluster

    # -- why a worker died (:mod:`.deaths`) -------------------------------------------------
    def explain_worker_death(self, cluster: Any, worker: Any) -> Death | None:
        """Ask AWS how the worker's ECS task (or EC2 instance) ended: its stop code and
        reasons (``DescribeTasks``), or its state reason (``DescribeInstances``)."""
        found = _worker_of(cluster, worker)
        if found is None:
            return None
        deadline = time.monotonic() + 10.0  # ECS marks a task STOPPED some seconds late
        while True:
            if self.launch_type == "ec2":
                instance_id = (getattr(found, "instance", None) or {}).get("InstanceId")
                if not instance_id:
                    return None
                [reservation] = self.client("ec2").describe_instances(
                    InstanceIds=[instance_id])["Reservations"] or [{"Instances": [{}]}]
                instance = reservation["Instances"][0]
                cause = ec2_instance_cause(instance)
                said = f"EC2 instance {instance_id}: {instance.get('StateReason') or 'running'}"
            else:
                arn = getattr(found, "task_arn", None)
                if not arn:
                    return None
                tasks = self.client("ecs").describe_tasks(cluster=cluster.cluster_arn,
                                                          tasks=[arn])["tasks"]
                task = tasks[0] if tasks else {}
                cause = ecs_task_cause(task) if task.get("lastStatus") == "STOPPED" else None
                said = f"ECS task {arn.rsplit('/', 1)[-1]}: {ecs_task_words(task)}"
            if cause is not None:
                return Death(cause, f"AWS stopped worker {getattr(worker, 'name', '?')}: "
                                    f"{said}", (said,))
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    # -- `daskflow clusters list` / `gc` (:mod:`.inventory`), and cost (:mod:`.pricing`) -----
    @classmethod
    def set_up_here(cls) -> bool:
        return inventory.configured()

    def live_clusters(self) -> list[LiveCluster]:
        return inventory.list_clusters(self.client("ecs"), self.client("ec2"))

    def end_cluster(self, cluster: LiveCluster) -> str:
        return inventory.end(self.client("ecs"), self.client("ec2"), cluster)

    def price(self, request: ResourceRequest) -> float | None:
        return worker_hour_price(self, request)


def _worker_of(cluster: Any, worker: Any) -> Any:
    """The dask-cloudprovider worker (an ECS task or EC2 instance) of a Dask worker: by
    its name, else by its address's host."""
    workers = getattr(cluster, "workers", None) or {}
    name = str(getattr(worker, "name", None))
    for key, candidate in workers.items():
        if name in (str(key), str(getattr(candidate, "name", None))):
            return candidate
    host = str(getattr(worker, "address", "")).rsplit(":", 1)[0].split("://")[-1]
    for candidate in workers.values():
        if host and host in (getattr(candidate, "private_ip", None),
                             getattr(candidate, "public_ip", None)):
            return candidate
    return None


class AWSFargateBackend(AWSBackend):
    """``aws`` pinned to Fargate."""

    name = "aws-fargate"
    pinned_launch_type = "fargate"


class AWSECSBackend(AWSBackend):
    """``aws`` pinned to ECS on EC2 container instances (``cluster-arn``)."""

    name = "aws-ecs"
    pinned_launch_type = "ecs"


class AWSEC2Backend(AWSBackend):
    """``aws`` pinned to one EC2 instance per worker."""

    name = "aws-ec2"
    pinned_launch_type = "ec2"

