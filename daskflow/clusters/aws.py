"""The AWS backends: dask-cloudprovider's ``FargateCluster``, ``ECSCluster`` and ``EC2Cluster``.

``aws`` launches what ``daskflow.cluster.aws.launch-type`` says; ``aws-fargate``,
``aws-ecs`` and ``aws-ec2`` pin one, so that one flow can put a step on Fargate
and another on a GPU instance with ``@resources(backend=...)``.

- Fargate: the request is rounded up to the smallest valid Fargate task size
  (:data:`FARGATE_SIZES`); what Fargate cannot give (a GPU, more than 16 vCPU or
  120 GiB, more than 20 GiB of disk) is refused with the limits.
- ECS on EC2: the task asks for exactly the request (CPU units, MiB, GPUs); the
  check refuses what no registered container instance can hold, naming the
  smallest instance type that would.
- EC2: each worker gets the smallest instance type of :mod:`.aws_instances`
  that fits (GPU requests get GPU types).

Every wait has a bound (``daskflow.cluster.start-timeout``, and
``api-timeout`` for each API call daskflow makes itself); dask-cloudprovider's
own waits have none (an EC2 scheduler that never answers is waited for
forever), so its start runs under ``asyncio.wait_for``. Teardown is verified
against the AWS API: no task of the cluster may be left un-STOPPED, no instance
un-terminated. Then daskflow deletes what dask-cloudprovider leaves behind
(ECS cluster, task definitions, IAM roles, security group), all found by the
cluster's unique name, or logs what is left when it cannot.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import weakref
from typing import Any, ClassVar

# missing: the registry says "pip install 'daskflow[aws]'"
import dask_cloudprovider.aws  # noqa: F401

from .. import config
from .aws_instances import (
    INSTANCE_TYPES,
    InstanceType,
    by_name,
    largest,
    smallest_fitting,
)
from .base import ClusterBackend, GiB, MiB, ResourceRequest, format_bytes
from .errors import (
    BackendUnavailableError,
    ClusterStartTimeoutError,
    ResourceRequestError,
)

logger = logging.getLogger("daskflow.clusters")

#: Tag on every resource of a daskflow cluster: its unique name.
CLUSTER_TAG = "daskflow-cluster"

#: Valid Fargate (Linux) task sizes: CPU units -> the memory sizes in MiB it allows.
#: Source: AWS ECS developer guide, "Task CPU and memory" (Fargate), as of 2025-09.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
#: Ephemeral storage every Fargate task gets (dask-cloudprovider cannot ask for more).
FARGATE_DISK = 20 * GiB


# -- errors -------------------------------------------------------------------------------------
class AWSCredentialsError(BackendUnavailableError):
    """No AWS credentials were found, or AWS refused them."""

    headline = "No usable AWS credentials"


class AWSRegionError(BackendUnavailableError):
    """No region is configured, or the region does not offer the service."""

    headline = "AWS region unusable"


class AWSUnreachableError(BackendUnavailableError):
    """The AWS API (or the endpoint configured for it) does not answer."""

    headline = "AWS API unreachable"


def fargate_size(cpu: float, memory_mib: int) -> tuple[int, int]:
    """The smallest valid Fargate (CPU units, MiB) with at least ``cpu`` vCPUs and ``memory_mib``.

    >>> fargate_size(1, 4096), fargate_size(0.25, 300), fargate_size(1, 30000)
    ((1024, 4096), (256, 512), (4096, 30720))
    """
    units = math.ceil(cpu * 1024 - 1e-9)
    for size, memories in FARGATE_SIZES.items():
        if size < units:
            continue
        fitting = [m for m in memories if m >= memory_mib]
        if fitting:
            return size, fitting[0]
    biggest = max(FARGATE_SIZES)
    raise ResourceRequestError(
        f"Fargate cannot give a task {cpu:g} vCPU and {memory_mib} MiB: its largest task "
        f"is {biggest // 1024} vCPU with {max(FARGATE_SIZES[biggest]) // 1024} GiB, and "
        f"{biggest // 1024} vCPU allows {min(FARGATE_SIZES[biggest]) // 1024}-"
        f"{max(FARGATE_SIZES[biggest]) // 1024} GiB. Ask for less, or run the step on "
        f"EC2 instances: @resources(..., backend='aws-ec2').")


class AWSBackend(ClusterBackend):
    """Workers as ECS tasks (Fargate or EC2 capacity) or EC2 instances, sized by the request.

    >>> kwargs = AWSFargateBackend().cluster_kwargs(
    ...     ResourceRequest(cpu=2, memory=5 * 2**30, workers=2), name="daskflow-1")
    >>> kwargs["worker_cpu"], kwargs["worker_mem"], kwargs["n_workers"]
    (2048, 5120, 2)
    """

    name = "aws"
    config_section = "cluster.aws"
    #: None: from daskflow.cluster.aws.launch-type
    pinned_launch_type: ClassVar[str | None] = None

    @property
    def launch_type(self) -> str:
        launch = self.pinned_launch_type or self.option("launch-type")
        if launch not in ("fargate", "ecs", "ec2"):
            from ..exceptions import ConfigurationError
            raise ConfigurationError(
                f"daskflow.cluster.aws.launch-type is {launch!r}: use fargate, ecs or ec2.")
        return launch

    # -- translation (pure) ----------------------------------------------------------------
    def worker_memory(self, request: ResourceRequest) -> int:
        if request.memory is not None:
            return request.memory
        from dask.utils import parse_bytes
        return parse_bytes(self.option("memory"))

    def image(self) -> str:
        if self.option("image"):
            return str(self.option("image"))
        import dask
        return f"ghcr.io/dask/dask:{dask.__version__}"

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
                f"{_size(request, self.worker_memory(request))} plus "
                f"{format_bytes(reserved)} for the system (daskflow.cluster.aws."
                f"reserved-memory){f' among families {families}' if families else ''}: the "
                f"largest is {f'{top.name} ({_describe_type(top)})' if top else 'none'}. Ask "
                f"for less, or name "
                f"a type with daskflow.cluster.aws.instance-type.")
        return chosen

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
            cpu_units, memory_mib = fargate_size(request.cpu, math.ceil(memory / MiB))
        else:  # ECS on EC2 capacity: exactly what was asked
            cpu_units, memory_mib = math.ceil(request.cpu * 1024 - 1e-9), math.ceil(memory / MiB)
        idle = config.get("cluster.idle-timeout")
        kwargs = {
            **self._common(name),
            "n_workers": request.workers,
            "worker_cpu": cpu_units,
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
            "environment": dict(self.option("environment") or {}),
            "tags": {**(self.option("tags") or {}), CLUSTER_TAG: name},
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
        return kwargs

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
            "env_vars": dict(self.option("environment") or {}),
            "instance_tags": {**(self.option("tags") or {}), CLUSTER_TAG: name},
            "volume_tags": {**(self.option("tags") or {}), CLUSTER_TAG: name},
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
        """What would be asked, concretely; nothing is contacted.

        ``aws-fargate: 2 tasks of 4 vCPU / 16 GiB (Fargate size 4096/16384), ...``
        """
        memory = self.worker_memory(request)
        n = request.workers
        try:
            if self.launch_type != "ecs":  # ecs without cluster-arn: still say the size
                self.refuse(request)
            if self.launch_type == "ec2":
                t = self.instance_type(request)
                return (f"aws-ec2: {n} {t.name} instance{'s' if n != 1 else ''} "
                        f"({_describe_type(t)}), one worker of {_size(request, memory)} each"
                        f", plus a {self.option('scheduler-instance-type')} scheduler")
            if self.launch_type == "fargate":
                units, mib = fargate_size(request.cpu, math.ceil(memory / MiB))
                return (f"aws-fargate: {n} task{'s' if n != 1 else ''} of {units / 1024:g} vCPU"
                        f" / {format_bytes(mib * MiB)} (Fargate size {units}/{mib}), worker "
                        f"{_size(request, memory)}")
            units = math.ceil(request.cpu * 1024 - 1e-9)
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

    def session(self) -> Any:
        """One botocore session per backend: credentials and endpoint data are read once."""
        if getattr(self, "_session", None) is None:
            import botocore.session
            self._session = botocore.session.get_session()
            self._clients: dict[tuple[str, str], Any] = {}
        return self._session

    def region(self, session: Any) -> str:
        region = self.option("region") or session.get_config_variable("region")
        service = "ec2" if self.launch_type == "ec2" else "ecs"
        if not region:
            raise AWSRegionError(
                "No AWS region is configured: set daskflow.cluster.aws.region, "
                "AWS_DEFAULT_REGION, or a region in your AWS profile.")
        known = {r for partition in session.get_available_partitions()
                 for r in session.get_available_regions(service, partition_name=partition)}
        if region not in known:
            from ..exceptions import did_you_mean
            raise AWSRegionError(
                f"AWS region '{region}' does not offer {service.upper()} (botocore's endpoint "
                f"data).{did_you_mean(region, sorted(known))} Regions with it: "
                f"{', '.join(sorted(known))}. Set daskflow.cluster.aws.region.")
        return region

    def client(self, service: str, session: Any = None, region: str | None = None) -> Any:
        """A botocore client whose every call is bounded by ``api-timeout`` (one retry)."""
        from botocore.config import Config
        from dask.utils import parse_timedelta
        session = session or self.session()
        region = region or self.region(session)
        if (service, region) not in self._clients:  # making a client takes ~0.1 s
            timeout = parse_timedelta(self.option("api-timeout"))
            self._clients[(service, region)] = session.create_client(
                service, region_name=region,
                config=Config(connect_timeout=timeout, read_timeout=timeout,
                              retries={"max_attempts": 2, "mode": "standard"}))
        return self._clients[(service, region)]

    def preflight(self, request: ResourceRequest) -> None:
        """Credentials, region, one API call; for ecs, a container instance that fits."""
        import botocore.exceptions as bx
        session = self.session()
        region = self.region(session)
        if session.get_credentials() is None:
            raise AWSCredentialsError(
                "No AWS credentials were found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, ~/.aws/credentials, SSO, or an instance role). Run 'aws "
                "configure' or 'aws sso login', or set the environment variables.")
        try:
            if self.launch_type == "ec2":
                self.client("ec2", session, region).describe_regions(RegionNames=[region])
            else:
                ecs = self.client("ecs", session, region)
                ecs.list_clusters(maxResults=1)
                if self.launch_type == "ecs":
                    self._check_container_instances(ecs, request)
        except bx.NoCredentialsError as exc:
            raise AWSCredentialsError(f"No AWS credentials were found: {exc}.") from exc
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
            raise AWSUnreachableError(
                f"The AWS API in {region} did not answer: {exc}. Check the network (proxy, "
                f"VPC endpoints) and AWS_ENDPOINT_URL; raise daskflow.cluster.aws.api-timeout "
                f"if it is only slow.") from exc
        except bx.ClientError as exc:
            raise self._client_error(exc, region) from exc

    def _client_error(self, exc: Any, region: str) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure",
                    "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
                    "InvalidSignatureException"):
            return AWSCredentialsError(
                f"AWS refused the credentials ({code}: {error.get('Message', '')}). Refresh "
                f"them ('aws sso login', new keys), or check AWS_PROFILE.")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return AWSCredentialsError(
                f"AWS denied daskflow's first call in {region} ({code}: "
                f"{error.get('Message', '')}). The {self.launch_type} backend needs ECS, EC2, "
                f"IAM and CloudWatch Logs permissions (see dask-cloudprovider's docs).")
        if status and int(status) >= 500:
            return AWSRegionError(
                f"The AWS API in region '{region}' failed ({status}: {code or exc}). Is the "
                f"service offered there? Set daskflow.cluster.aws.region.")
        return BackendUnavailableError(f"AWS refused daskflow's first call in {region}: {exc}")

    def _check_container_instances(self, ecs: Any, request: ResourceRequest) -> None:
        cluster = self.option("cluster-arn")
        arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")
        found = []
        if arns.get("containerInstanceArns"):
            described = ecs.describe_container_instances(
                cluster=cluster, containerInstances=arns["containerInstanceArns"])
            for ci in described.get("containerInstances", []):
                found.append(_registered(ci))
        units = math.ceil(request.cpu * 1024 - 1e-9)
        mib = math.ceil(self.worker_memory(request) / MiB)
        if any(f["CPU"] >= units and f["MEMORY"] >= mib and f["GPU"] >= request.gpu
               for f in found):
            return
        try:
            would = smallest_fitting(request.cpu, mib + 512, request.gpu,
                                     self.option("instance-families"))
        except Exception:
            would = None
        have = "; ".join(sorted({f"{f['CPU']} CPU units, {f['MEMORY']} MiB, {f['GPU']} GPUs"
                                 for f in found})) or "no ACTIVE container instances"
        raise ResourceRequestError(
            f"No container instance of ECS cluster {cluster} can run a task of {units} CPU "
            f"units, {mib} MiB{f', {request.gpu} GPUs' if request.gpu else ''} (they have: "
            f"{have}). Ask for less, or add container instances of at least "
            f"{would.name + ' (' + _describe_type(would) + ')' if would else 'that size'} to "
            f"the cluster.")

    # -- start ----------------------------------------------------------------------------
    def make_cluster(self, request: ResourceRequest, *, name: str) -> Any:
        import dask
        from dask.utils import parse_timedelta
        kwargs = self.cluster_kwargs(request, name=name)
        timeout = parse_timedelta(config.get("cluster.start-timeout"))
        cls = _cluster_class(self.launch_type)
        # EC2Cluster's TLS set-up writes temporary certificates into the global dask
        # config; they belong to that cluster's Security object, not to this process
        saved = copy.deepcopy(dask.config.get("distributed.comm"))
        try:
            cluster = cls(daskflow_start_timeout=timeout, daskflow_request=request, **kwargs)
        finally:
            dask.config.set({"distributed.comm": saved})
        cluster.job_name = name  # type: ignore[attr-defined]  # as dask-jobqueue's: to find it
        return cluster

    # -- teardown: verified against the AWS API --------------------------------------------
    def snapshot(self, cluster: Any, name: str) -> Any:
        if cluster is not None:
            _detach_finalizers(cluster)  # daskflow deletes what they would, and verifies it
        region = getattr(cluster, "_region_name", None) or getattr(cluster, "region", None)
        return {"name": name, "launch": self.launch_type,
                "cluster_arn": getattr(cluster, "cluster_arn", None)
                or self.option("cluster-arn") or f"dask-{name}",
                "own_cluster": not self.option("cluster-arn"),
                "region": region or self.option("region")}

    def _client_for(self, snapshot: Any, service: str) -> Any:
        session = self.session()
        return self.client(service, session, snapshot["region"] or self.region(session))

    def leftovers(self, snapshot: Any) -> list[str]:
        if snapshot["launch"] == "ec2":
            return [f"EC2 instance {i['InstanceId']} ({i['InstanceType']}, "
                    f"{i['State']['Name']})" for i in self._instances(snapshot)]
        return [f"ECS task {t['taskArn'].rsplit('/', 1)[-1]} ({t['lastStatus']})"
                for t in self._tasks(snapshot) if t.get("lastStatus") != "STOPPED"]

    def _instances(self, snapshot: Any) -> list[dict[str, Any]]:
        ec2 = self._client_for(snapshot, "ec2")
        found = []
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[
                {"Name": f"tag:{CLUSTER_TAG}", "Values": [snapshot["name"]]},
                {"Name": "instance-state-name",
                 "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]}]):
            for reservation in page.get("Reservations", []):
                found += reservation.get("Instances", [])
        return found

    def _tasks(self, snapshot: Any) -> list[dict[str, Any]]:
        import botocore.exceptions as bx
        ecs = self._client_for(snapshot, "ecs")
        arns: list[str] = []
        try:
            for role in ("scheduler", "worker"):
                for desired in ("RUNNING", "STOPPED"):
                    for page in ecs.get_paginator("list_tasks").paginate(
                            cluster=snapshot["cluster_arn"],
                            family=f"dask-{snapshot['name']}-{role}",
                            desiredStatus=desired):
                        arns += page.get("taskArns", [])
        except bx.ClientError as exc:
            if "ClusterNotFound" in str(exc):
                return []  # never created, or already deleted with its tasks
            raise
        tasks = []
        for i in range(0, len(arns), 100):
            tasks += ecs.describe_tasks(cluster=snapshot["cluster_arn"],
                                        tasks=arns[i:i + 100]).get("tasks", [])
        return tasks

    def force_teardown(self, snapshot: Any) -> None:
        if snapshot["launch"] == "ec2":
            ids = [i["InstanceId"] for i in self._instances(snapshot)]
            if ids:
                self._client_for(snapshot, "ec2").terminate_instances(InstanceIds=ids)
            return
        ecs = self._client_for(snapshot, "ecs")
        for task in self._tasks(snapshot):
            if task.get("desiredStatus") != "STOPPED" or task.get("lastStatus") != "STOPPED":
                ecs.stop_task(cluster=snapshot["cluster_arn"], task=task["taskArn"],
                              reason="daskflow: step over, cluster torn down")

    def cleanup(self, snapshot: Any, *, failing: bool) -> None:
        """Delete what dask-cloudprovider leaves after close; list it if delete-leftovers is off."""
        if snapshot["launch"] == "ec2":
            return  # instances terminate with their disks; the shared security group stays
        left = self.cloud_leftovers(snapshot)
        if not left:
            return
        if not self.option("delete-leftovers"):
            logger.warning("AWS resources of cluster %s left by dask-cloudprovider: %s",
                           snapshot["name"], "; ".join(f"{kind} {what}" for kind, what in left))
            return
        failed = []
        for kind, what in left:
            try:
                self._delete(snapshot, kind, what)
            except Exception as exc:  # one failure must not keep the others
                failed.append(f"{kind} {what} ({type(exc).__name__}: {exc})")
        if failed:
            logger.warning("Could not delete these AWS resources of cluster %s: %s. Delete "
                           "them by hand (they are tagged %s=%s).", snapshot["name"],
                           "; ".join(failed), CLUSTER_TAG, snapshot["name"])

    def cloud_leftovers(self, snapshot: Any) -> list[tuple[str, str]]:
        """Non-running resources of the cluster that still exist: (kind, id) pairs."""
        import botocore.exceptions as bx
        name = snapshot["name"]
        ecs = self._client_for(snapshot, "ecs")
        left: list[tuple[str, str]] = []
        for role in ("scheduler", "worker"):
            for page in ecs.get_paginator("list_task_definitions").paginate(
                    familyPrefix=f"dask-{name}-{role}", status="ACTIVE"):
                left += [("task definition", arn) for arn in page["taskDefinitionArns"]]
        iam = self._client_for(snapshot, "iam")
        for role in (f"dask-{name}-execution-role", f"dask-{name}-task-role"):
            try:
                iam.get_role(RoleName=role)
                left.append(("IAM role", role))
            except bx.ClientError:
                pass
        ec2 = self._client_for(snapshot, "ec2")
        groups = ec2.describe_security_groups(Filters=[
            {"Name": "group-name", "Values": [f"dask-{name}-security-group"]}])
        left += [("security group", g["GroupId"]) for g in groups.get("SecurityGroups", [])]
        if snapshot["own_cluster"]:
            clusters = ecs.describe_clusters(clusters=[snapshot["cluster_arn"]])
            left += [("ECS cluster", c["clusterArn"]) for c in clusters.get("clusters", [])
                     if c.get("status") == "ACTIVE"]
        return left

    def _delete(self, snapshot: Any, kind: str, what: str) -> None:
        if kind == "task definition":
            self._client_for(snapshot, "ecs").deregister_task_definition(taskDefinition=what)
        elif kind == "IAM role":
            iam = self._client_for(snapshot, "iam")
            for policy in iam.list_attached_role_policies(RoleName=what)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=what, PolicyArn=policy["PolicyArn"])
            iam.delete_role(RoleName=what)
        elif kind == "security group":
            self._client_for(snapshot, "ec2").delete_security_group(GroupId=what)
        elif kind == "ECS cluster":
            self._client_for(snapshot, "ecs").delete_cluster(cluster=what)


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


# -- helpers -----------------------------------------------------------------------------------
def _size(request: ResourceRequest, memory: int) -> str:
    gpu = f", {request.gpu} GPU{'s' if request.gpu != 1 else ''}" if request.gpu else ""
    return f"{request.threads} thread{'s' if request.threads != 1 else ''}, " \
           f"{format_bytes(memory)}{gpu}"


def _describe_type(t: InstanceType) -> str:
    gpu = f", {t.gpus} x {t.gpu_model}" if t.gpus else ""
    return f"{t.vcpus} vCPU, {format_bytes(t.memory_mib * MiB)}{gpu}"


def _registered(container_instance: dict[str, Any]) -> dict[str, int]:
    found = {"CPU": 0, "MEMORY": 0, "GPU": 0}
    for resource in container_instance.get("registeredResources", []):
        if resource.get("name") in ("CPU", "MEMORY"):
            found[resource["name"]] = int(resource.get("integerValue", 0))
        elif resource.get("name") == "GPU":
            found["GPU"] = len(resource.get("stringSetValue", []))
    return found


def _detach_finalizers(cluster: Any) -> None:
    """Drop dask-cloudprovider's ``weakref.finalize`` deletions of ``cluster``'s resources.

    They hold the cluster alive until interpreter exit, then call ``cluster.sync``
    on a closed loop, failing with tracebacks; daskflow's cleanup does their work.
    """
    for finalizer in list(getattr(weakref.finalize, "_registry", {})):
        try:
            info = finalizer.peek()
        except Exception:
            continue
        if info is not None and info[0] is cluster:
            finalizer.detach()


_CLASSES: dict[str, type] = {}


def _cluster_class(launch: str) -> type:
    """dask-cloudprovider's class for ``launch``, with a bound on its start and today's CLI."""
    if launch in _CLASSES:
        return _CLASSES[launch]
    from dask_cloudprovider.aws import EC2Cluster, ECSCluster, FargateCluster
    from dask_cloudprovider.aws import ec2 as ec2_module
    from dask_cloudprovider.aws import ecs as ecs_module
    from dask_cloudprovider.generic.vmcluster import VMCluster
    from distributed.deploy.spec import SpecCluster

    class DaskCLIScheduler(ecs_module.Scheduler):
        """``dask scheduler``: the dask-scheduler script is gone since distributed 2026.6."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            command = self._overrides["command"]
            if command[0] == "dask-scheduler":
                self._overrides["command"] = ["dask", "scheduler", *command[1:]]

    class DaskCLIWorker(ecs_module.Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            command = self._overrides["command"]
            if command[0] == "dask-worker":
                self._overrides["command"] = ["dask", "worker", *command[1:]]

    class ECSCommands(SpecCluster):
        """Sits between ECSCluster and SpecCluster: swaps in the task classes above."""

        async def _start(self) -> None:
            spec = getattr(self, "scheduler_spec", None)
            if spec and spec.get("cls") is ecs_module.Scheduler:
                spec["cls"] = DaskCLIScheduler
            if getattr(self, "new_spec", None) and self.new_spec.get("cls") is ecs_module.Worker:
                self.new_spec["cls"] = DaskCLIWorker  # worker_spec shares this dict
            await super()._start()

        async def _close(self) -> None:
            # SpecCluster retires workers first, which waits for the tasks they run: the
            # step is over (or gave up, as @timeout does), so stop their ECS tasks now
            workers = [w for w in getattr(self, "workers", {}).values()
                       if getattr(w, "task", None)]
            await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
            await super()._close()

    class BoundedEC2Scheduler(ec2_module.EC2Scheduler):
        async def wait_for_scheduler(self) -> None:
            """dask-cloudprovider's blocks the event loop on connect(): poll without blocking."""
            address = (self.external_address or self.address).split("://")[1]
            host, port = address.rsplit(":", 1)
            while True:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
                    writer.close()
                    return
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(1)

    class EC2Scheduler(VMCluster):
        async def _start(self) -> None:
            self.scheduler_class = BoundedEC2Scheduler
            await super()._start()

    def bounded(base: type, middle: type) -> type:
        class Bounded(base, middle):  # type: ignore[misc, valid-type]
            def __init__(self, *, daskflow_start_timeout: float,
                         daskflow_request: ResourceRequest, **kwargs: Any) -> None:
                self._daskflow_start_timeout = daskflow_start_timeout
                self._daskflow_request = daskflow_request
                try:
                    super().__init__(**kwargs)
                except BaseException:
                    _detach_finalizers(self)
                    runner = getattr(self, "_loop_runner", None)
                    if runner is not None:  # a failed start leaves its loop thread running
                        try:
                            runner.stop()
                        except Exception:
                            pass
                    raise

            async def _start(self) -> None:
                timeout = self._daskflow_start_timeout
                try:
                    await asyncio.wait_for(super()._start(), timeout)
                except asyncio.TimeoutError as exc:
                    raise ClusterStartTimeoutError(
                        f"The AWS cluster {self.name} ({launch}) of "
                        f"{self._daskflow_request.describe()} did not start within the start "
                        f"timeout of {timeout:g}s (its scheduler never became reachable). "
                        f"Check the security groups and subnets (the scheduler's port 8786 "
                        f"must be reachable from here), or raise daskflow.cluster."
                        f"start-timeout if AWS is only slow.",
                        expected=self._daskflow_request.workers, available=0,
                        timeout=timeout) from exc

        Bounded.__name__ = f"Daskflow{base.__name__}"
        return Bounded

    _CLASSES.update(fargate=bounded(FargateCluster, ECSCommands),
                    ecs=bounded(ECSCluster, ECSCommands),
                    ec2=bounded(EC2Cluster, EC2Scheduler))
    return _CLASSES[launch]
